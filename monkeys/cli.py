"""The `monkeys` command: the top-level parser and the entry point. The commands live in
``monkeys/commands/``, one module per group, each declaring its own options; the options several
commands share are in ``monkeys/options.py``, what the commands show in ``monkeys/display.py``.
The ``monkeys`` package is the only one that imports both ``agent`` and ``harness``.

Every command that prints a table also takes --json; --workers sets parallelism everywhere.
Progress goes to stderr, so --json output on stdout stays clean.
"""

from __future__ import annotations

import argparse
import sys

from rich.markup import escape

from harness import engine, watchdog
from harness.containers import ContainerRuntime
from harness.subset import SubsetError
from harness.tasks import TaskLoadError
from images.recipes import RecipeError
from monkeys.commands import command_parser, demo, doctor, evaluate, images, report, sample, tasks
from monkeys.display import err

# In the order `monkeys --help` lists their commands.
COMMAND_MODULES = (tasks, images, evaluate, doctor, sample, report, demo)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: the top-level parser with every command module's commands."""
    return command_parser(COMMAND_MODULES,
                          description="Repeated sampling for coding agents: many independent attempts per task, "
                                      "each judged by the task's own tests in a fresh container.")


def main(argv: list[str] | None = None) -> int:
    """Run the command ``argv`` (default: the process's arguments) and return its exit code: 2 for
    a task set, subset or recipe file that cannot be read, 3 when no Docker engine answers, 130 when
    interrupted."""
    args = build_parser().parse_args(argv)
    guard = None
    # Commands that start containers (makes_containers=True): a watchdog removes them even if this
    # process is SIGKILLed.
    if getattr(args, "makes_containers", False):
        guard = watchdog.start(ContainerRuntime.owner_label())
    try:
        return args.func(args)
    except (TaskLoadError, SubsetError, RecipeError) as problem:
        err.print(f"[red]error:[/] {escape(str(problem))}")
        return 2
    except engine.EngineUnavailable as problem:
        err.print(f"[red]error:[/] {escape(str(problem))}")
        return 3
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    finally:
        if guard is not None:
            guard.close()


if __name__ == "__main__":
    sys.exit(main())
