"""``monkeys tasks list`` and ``monkeys tasks check``: what a task set holds, and whether each task
behaves in its image as its row says."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict

from rich.markup import escape
from rich.table import Column, Table

from harness.validate import check_task
from monkeys import options
from monkeys.commands.evaluate import make_evaluator
from monkeys.display import out, print_json, progress_bars
from monkeys.options import SharedOptions


def cmd_tasks_list(args) -> int:
    tasks = options.load(args).tasks
    if args.json:
        print_json([
            {"instance_id": t.instance_id, "repo": t.repo, "version": t.version,
             "difficulty": t.difficulty.value if t.difficulty else None,
             "FAIL_TO_PASS": len(t.fail_to_pass), "PASS_TO_PASS": len(t.pass_to_pass),
             **({"flaky": t.to_row()["flaky"]} if t.flaky else {})}
            for t in tasks
        ])
        return 0
    table = Table(Column("instance_id", no_wrap=True), "repo", "version", "difficulty", "F2P", "P2P", "flaky",
                  title=f"{len(tasks)} tasks")
    for t in tasks:
        flaky = f"{t.flaky.cause.value} {t.flaky.rate:.2f}{' (gold)' if t.flaky.under_gold else ''}" if t.flaky else ""
        table.add_row(t.instance_id, t.repo, t.version, t.difficulty.value if t.difficulty else "",
                      str(len(t.fail_to_pass)), str(len(t.pass_to_pass)), flaky)
    out.print(table)
    return 0


def cmd_tasks_check(args) -> int:
    tasks = options.load(args).tasks
    evaluator = make_evaluator(args, f"check-{os.getpid()}")
    with progress_bars() as progress:
        bar = progress.add_task("checking tasks in their images", total=len(tasks))

        def one(task):
            result = check_task(evaluator, task, flaky_runs=args.runs)
            progress.advance(bar)
            return result

        with ThreadPoolExecutor(args.workers) as pool:
            checks = list(pool.map(one, tasks))
    bad = [c for c in checks if not c.ok]
    if args.json:
        print_json([{**asdict(c), "ok": c.ok, "observed_rate": c.observed_rate} for c in checks])
    else:
        table = Table("instance_id", "ok", "flaky rate (observed / documented)", "problems",
                      title=f"{len(checks) - len(bad)} of {len(checks)} tasks behave as their rows say")
        for c in checks:
            rate = f"{c.observed_rate:.2f} / {c.documented_rate:.2f} ({c.flaky_runs} runs)" if c.flaky_runs else ""
            table.add_row(c.instance_id, "[green]yes[/]" if c.ok else "[red]no[/]", rate, escape("\n".join(c.problems)))
        out.print(table)
    return 1 if bad else 0


def add_parsers(commands, shared: SharedOptions) -> None:
    """``tasks list`` and ``tasks check``."""
    tasks = commands.add_parser("tasks", help="list and check task sets")
    actions = tasks.add_subparsers(dest="tasks_command", required=True, metavar="ACTION")
    p = actions.add_parser("list", parents=[shared.workers, shared.task_set, shared.json],
                           help="list the tasks of a task set (default: the bundled suite)")
    p.set_defaults(func=cmd_tasks_list)
    p = actions.add_parser(
        "check", parents=[shared.workers, shared.task_set, shared.json],
        help="run each task's tests in its image: FAIL_TO_PASS fail at base and pass with the gold patch, "
             "PASS_TO_PASS pass in both, flaky tasks flake at their documented rate")
    p.add_argument("--runs", type=int, default=40, help="runs of a flaky task's tests in its flaky state (default 40)")
    p.set_defaults(func=cmd_tasks_check, makes_containers=True)
