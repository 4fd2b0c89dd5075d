"""``monkeys doctor``: the installation's checks (in ``monkeys.doctor``) as a table, a fix beside
each problem."""

from __future__ import annotations

from dataclasses import asdict

from rich.markup import escape
from rich.table import Table

from monkeys import options
from monkeys.display import err, out, print_json
from monkeys.doctor import CheckStatus, run_checks
from monkeys.options import SharedOptions


def cmd_doctor(args) -> int:
    tasks = options.load(args).tasks
    checks = run_checks(tasks, fix=args.fix, say=err.print)
    if args.json:
        print_json([{**asdict(c), "status": c.status.value} for c in checks])
    else:
        table = Table("check", "status", "detail", "fix", title="monkeys doctor")
        colours = {CheckStatus.OK: "green", CheckStatus.WARN: "yellow", CheckStatus.FAIL: "red"}
        for c in checks:
            table.add_row(escape(c.name), f"[{colours[c.status]}]{c.status.value}[/]", escape(c.detail), escape(c.fix))
        out.print(table)
    return 1 if any(c.status is CheckStatus.FAIL for c in checks) else 0


def add_parsers(commands, shared: SharedOptions) -> None:
    """``doctor``."""
    p = commands.add_parser(
        "doctor", parents=[shared.workers, shared.task_set, shared.json],
        help="check the Docker engine, disk, images and model backends, with a fix for each problem")
    p.add_argument("--fix", action="store_true",
                   help="install and start a Docker engine where none answers (root on Debian/Ubuntu)")
    p.set_defaults(func=cmd_doctor)
