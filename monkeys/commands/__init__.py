"""The `monkeys` commands, one module per group: tasks, images, evaluate (and audit-flaky), doctor,
sample (with runs show and export), report, demo.

Each module declares its commands and their own options in ``add_parsers(commands, shared)``:
``commands`` is the top-level subparsers action, ``shared`` the options several commands take
(``monkeys.options.SharedOptions``). Each command's parser sets ``func`` (called with the parsed
arguments; returns the exit code) and, for commands that start containers, ``makes_containers=True``.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from types import ModuleType

from monkeys.options import shared_options


def command_parser(modules: Iterable[ModuleType], description: str | None = None) -> argparse.ArgumentParser:
    """A ``monkeys`` parser with the commands of ``modules`` (each a module of this package), in
    that order. The modules are passed in rather than imported here, so that a command (the demo)
    can parse other commands' arguments without importing the module that lists every command."""
    parser = argparse.ArgumentParser(prog="monkeys", description=description)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    shared = shared_options()
    for module in modules:
        module.add_parsers(commands, shared)
    return parser
