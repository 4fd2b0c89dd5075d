"""``monkeys report``: coverage, selection, scaling fits and cost of sampling runs, side by side,
as a table here and an HTML report."""

from __future__ import annotations

import json
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from harness.config import runs_dir
from harness.store import STORE_FILE
from monkeys import options
from monkeys.display import err, out, print_json
from monkeys.options import SharedOptions


def cmd_report(args) -> int:
    from harness.scores import report, report_html  # matplotlib and scipy load only here

    tasks = options.load(args).tasks
    summaries = []
    for name in args.runs:
        if not (runs_dir() / name / STORE_FILE).is_file():
            err.print(f"[red]error:[/] no run store at {runs_dir() / name / STORE_FILE}")
            return 2
        summaries.append(report.summarize(report.load(name, tasks=tasks), bootstrap=args.bootstrap))
    comparisons = report.compare(summaries)
    target = args.out or (runs_dir() / args.runs[0] / "report.html")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(report_html.render(summaries, comparisons))
    # Beside the HTML; not report.json, which is the official evaluation report.
    target.with_name(target.stem + ".summary.json").write_text(json.dumps({"runs": summaries, "comparisons": comparisons}, indent=1))
    if args.json:
        print_json({"runs": summaries, "comparisons": comparisons, "html": str(target)})
        return 0
    table = Table("run", "tasks asked", "with verdicts", "attempts", "k (all)", "coverage@1", "coverage@max",
                  "all tasks@max", "unguarded@max", "$/attempt", "$/solved",
                  title="coverage and cost (coverage: tasks with >= k judged attempts; all tasks: every task asked "
                        "for, one without a verdict as unsolved; unguarded: official resolved)")
    for s in summaries:
        cov, cost = s.get("coverage") or [], s.get("cost") or {}
        table.add_row(s["run"], str(s.get("requested_tasks", s["tasks"])), str(s["tasks"]), str(s["judged_attempts"]),
                      str(s["max_common_k"]), _point(cov, 0), _point(cov, -1),
                      _point(s.get("coverage_all_tasks") or [], -1), _point(s.get("coverage_unguarded") or [], -1),
                      _dollars(cost, "per_attempt"), _dollars(cost, "per_solved_issue"))
    out.print(table)
    for s in summaries:
        for line in report.notes(s):
            out.print(escape(line), soft_wrap=True)
    for line in comparisons:
        out.print(line)
    out.print(f"report: {target}")
    return 0


def _point(curve: list, i: int) -> str:
    return f"{curve[i]['value']:.3f} (k={curve[i]['k']})" if curve else ""


def _dollars(cost: dict, key: str) -> str:
    if not cost:
        return ""
    value = cost.get(key)
    if value is not None:
        return f"{value:.5f}"
    return "none solved" if key == "per_solved_issue" and cost.get("dollars") is not None else "unknown"


def add_parsers(commands, shared: SharedOptions) -> None:
    """``report``."""
    p = commands.add_parser(
        "report", parents=[shared.task_set, shared.json],
        help="coverage by k with bootstrap intervals, selection without hidden tests, scaling fits and cost, for "
             "one or more sampling runs side by side; writes an HTML report")
    p.add_argument("runs", nargs="+", metavar="RUN")
    p.add_argument("--out", type=Path, default=None, help="HTML path (default runs/<first run>/report.html)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for intervals (default 1000)")
    p.set_defaults(func=cmd_report)
