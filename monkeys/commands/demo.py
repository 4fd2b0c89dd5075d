"""``monkeys demo``: the whole loop on the embedded defaults, as the commands a user would type."""

from __future__ import annotations

from monkeys.commands import command_parser, evaluate, images, report, sample
from monkeys.display import err
from monkeys.options import SharedOptions

DEMO_RUN = "demo"
DEMO_K = 6  # 108 attempts of the CPU model: about 6 minutes on 2 cores, enough for one-line fixes to show


def cmd_demo(args) -> int:
    """The whole loop on the embedded defaults: bundled images, the bundled CPU model through the
    edit scaffold, evaluation of every attempt, and the report."""
    steps = [
        ["images", "build"],
        ["sample", "-k", str(args.k), "--run", args.run, "--workers", str(args.workers)],
        ["evaluate", "--run", args.run, "--workers", str(args.workers)],
        ["report", args.run],
    ]
    for argv in steps:
        err.print(f"[bold]monkeys {' '.join(argv)}[/]")
        # Parsed by the steps' own command modules, as `monkeys` parses them.
        step = command_parser((images, sample, evaluate, report)).parse_args(argv)
        code = step.func(step)
        if code not in (0, None):
            err.print(f"[red]demo stopped:[/] monkeys {' '.join(argv)} exited with {code}")
            return code
    return 0


def add_parsers(commands, shared: SharedOptions) -> None:
    """``demo``."""
    p = commands.add_parser(
        "demo", parents=[shared.workers],
        help="the main job on the embedded defaults: bundled images, the bundled CPU model (Gemma 3 270M on "
             "llama.cpp) sampling the bundled suite, evaluation, and the report")
    p.add_argument("-k", type=int, default=DEMO_K, help=f"attempts per task (default {DEMO_K})")
    p.add_argument("--run", default=DEMO_RUN, help=f"run name (default {DEMO_RUN}; rerunning resumes it)")
    # Its steps run inside this process, under the watchdog that main starts for this command.
    p.set_defaults(func=cmd_demo, makes_containers=True)
