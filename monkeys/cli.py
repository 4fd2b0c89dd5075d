"""The `monkeys` command. The ``monkeys`` package is the only one that imports both ``agent`` and
``harness`` (the sampling commands are in ``monkeys/sampling.py``).

Every command that prints a table also takes --json; --workers sets parallelism everywhere.
Progress goes to stderr, so --json output on stdout stays clean.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness import engine, watchdog
from harness.containers import ContainerRuntime
from monkeys.doctor import CheckStatus, run_checks
from images.build import DEFAULT_MIRROR, DEFAULT_REGISTRY, BuildStatus, ImageBuilder, ImageKind, ImageResult, Reporter
from harness.image_names import image_name
from images.mirrors import Mirrors
from images.pull import PullReporter, PullStatus, pull_images
from images.recipes import RecipeError, read_recipes, with_recipes
from harness.subset import SubsetError
from harness.tasks import LoadResult, TaskLoadError
from harness.audit import audit_tasks, summary as audit_summary
from harness.config import cache_dir, runs_dir
from harness.evalcache import EvalCache
from harness.evaluate import DEFAULT_AUDIT_RUNS, EvalConfig, Evaluator, RunMismatch, evaluate
from harness.grading import PAPER_RUNS, Policy
from harness.predictions import PredsFile, empty, from_attempts, gold, read_preds
from harness.store import STORE_FILE, AttemptStatus, RunStore
from harness.validate import check_task
from monkeys import sampling, taskargs
from monkeys.console import err, out, print_json



def _load(args) -> LoadResult:
    return taskargs.load(args)


# ---------------------------------------------------------------------------------------------
# tasks


def cmd_tasks_list(args) -> int:
    tasks = _load(args).tasks
    if args.json:
        print_json([
            {"instance_id": t.instance_id, "repo": t.repo, "version": t.version,
             "difficulty": t.difficulty.value if t.difficulty else None,
             "FAIL_TO_PASS": len(t.fail_to_pass), "PASS_TO_PASS": len(t.pass_to_pass),
             **({"flaky": t.to_row()["flaky"]} if t.flaky else {})}
            for t in tasks
        ])
        return 0
    table = Table(title=f"{len(tasks)} tasks")
    table.add_column("instance_id", no_wrap=True)
    for column in ("repo", "version", "difficulty", "F2P", "P2P", "flaky"):
        table.add_column(column)
    for t in tasks:
        flaky = f"{t.flaky.cause.value} {t.flaky.rate:.2f}{' (gold)' if t.flaky.under_gold else ''}" if t.flaky else ""
        table.add_row(t.instance_id, t.repo, t.version, t.difficulty.value if t.difficulty else "",
                      str(len(t.fail_to_pass)), str(len(t.pass_to_pass)), flaky)
    out.print(table)
    return 0


def cmd_tasks_check(args) -> int:
    tasks = _load(args).tasks
    evaluator = _evaluator(args, f"check-{os.getpid()}")
    with _progress() as progress:
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
        table = Table(title=f"{len(checks) - len(bad)} of {len(checks)} tasks behave as their rows say")
        for column in ("instance_id", "ok", "flaky rate (observed / documented)", "problems"):
            table.add_column(column)
        for c in checks:
            rate = f"{c.observed_rate:.2f} / {c.documented_rate:.2f} ({c.flaky_runs} runs)" if c.flaky_runs else ""
            table.add_row(c.instance_id, "[green]yes[/]" if c.ok else "[red]no[/]", rate, escape("\n".join(c.problems)))
        out.print(table)
    return 1 if bad else 0


# ---------------------------------------------------------------------------------------------
# images


class _RichReporter(Reporter):
    def __init__(self, progress: Progress, total: int):
        self.view = progress
        self.bar = progress.add_task("images", total=total)
        self.rows: dict[str, int] = {}

    def start(self, name: str, kind: ImageKind) -> None:
        self.rows[name] = self.view.add_task(f"  {kind.value} {name}", total=None)

    def line(self, name: str, text: str) -> None:
        if name in self.rows:
            self.view.update(self.rows[name], description=f"  {name}: {text[:70]}")

    def done(self, result: ImageResult) -> None:
        if result.name in self.rows:
            self.view.remove_task(self.rows.pop(result.name))
        if result.status is not BuildStatus.REUSED:
            colour = "red" if result.status is BuildStatus.FAILED else "green"
            self.view.console.print(f"[{colour}]{result.status.value}[/] {result.name} ({result.seconds:.1f} s)")
        self.view.advance(self.bar)


class _PullReporter(_RichReporter, PullReporter):
    """The build display, plus each image's download (bytes over every layer) while it runs."""

    def start(self, name: str, kind: ImageKind) -> None:
        self.rows[name] = self.view.add_task(f"  pull {name}", total=None)

    def progress(self, name: str, done: int, total: int) -> None:  # type: ignore[override]
        if name in self.rows:
            self.view.update(self.rows[name], completed=done, total=total or None)

    def done(self, result) -> None:
        if result.name in self.rows:
            self.view.remove_task(self.rows.pop(result.name))
        if result.status is not PullStatus.PRESENT:
            colour = "green" if result.ok else "red"
            self.view.console.print(f"[{colour}]{result.status.value}[/] {result.name} ({result.seconds:.1f} s)")
        self.view.advance(self.bar)


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err, transient=False)


def cmd_images_build(args) -> int:
    tasks = _load(args).tasks
    if args.recipes:
        tasks = with_recipes(tasks, read_recipes(args.recipes))
    client = engine.connect()
    registry = None if args.registry in ("", "none") else args.registry
    # Bases and envs are shared; the total is an upper bound refined as results arrive.
    with _progress() as progress:
        reporter = _RichReporter(progress, total=len(tasks) + 2 * len({t.env_recipe for t in tasks}))
        builder = ImageBuilder(client, Mirrors(args.repo_mirror), registry=registry, mirror=args.mirror,
                               workers=args.workers, reporter=reporter, log_dir=cache_dir() / "build-logs")
        report = builder.build(tasks)
        progress.update(reporter.bar, total=len(report.results), completed=len(report.results))
    if args.json:
        print_json({"counts": report.counts(), "images": [asdict(r) for r in report.results]})
    else:
        table = Table(title="images: " + ", ".join(f"{n} {s}" for s, n in sorted(report.counts().items())))
        for column in ("image", "kind", "status", "seconds", "for"):
            table.add_column(column)
        for r in report.results:
            table.add_row(r.name, r.kind.value, r.status.value, f"{r.seconds:.1f}", r.for_what)
        out.print(table)
    for failure in report.failed:
        err.print(f"[red]error:[/] {escape(failure.error)}")
    return 1 if report.failed else 0


def cmd_images_pull(args) -> int:
    tasks = _load(args).tasks
    names = list(dict.fromkeys(image_name(t) for t in tasks))
    client = engine.connect()
    with _progress() as progress:
        reporter = _PullReporter(progress, total=len(names))
        results = pull_images(client, names, registry=args.registry or None, reporter=reporter,
                              retries=args.retries, workers=args.workers)
    if args.json:
        print_json([asdict(r) for r in results])
    else:
        counts = Counter(r.status.value for r in results)
        table = Table(title="images: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
        for column in ("image", "status", "MB", "seconds", "tries"):
            table.add_column(column)
        for r in results:
            table.add_row(r.name, r.status.value, f"{r.bytes / 1e6:.0f}", f"{r.seconds:.1f}", str(r.attempts))
        out.print(table)
    bad = [r for r in results if r.status not in (PullStatus.PRESENT, PullStatus.PULLED)]
    for r in bad:
        err.print(f"[yellow]{r.status.value}[/] {escape(r.error)}")
    if bad:
        err.print(f"{len(bad)} of {len(names)} images are missing; runs go on without those tasks "
                  f"(or build them: monkeys images build --recipes FILE)")
    return 1 if bad else 0


# ---------------------------------------------------------------------------------------------
# evaluate and audit-flaky


def _evaluator(args, run: str) -> Evaluator:
    # Commands without the judging options (tasks check) get EvalConfig's defaults.
    given = {name: getattr(args, name) for name in ("reruns", "audit_runs", "timeout", "existing_tests")
             if getattr(args, name, None) is not None}
    if hasattr(args, "policy"):
        given["policy"] = Policy(args.policy)
    config = EvalConfig(workers=args.workers, **given)
    client = engine.connect()
    evaluator = Evaluator(client, EvalCache(), config, run=run)
    evaluator.runtime.reap()
    return evaluator


def cmd_evaluate(args) -> int:
    sampling_run = not (args.preds or args.gold or args.empty)
    if sampling_run and args.run and args.tasks is None and (runs_dir() / args.run / STORE_FILE).is_file():
        # Judge a sampling run against the task set it was sampled from, unless told otherwise.
        sampled = RunStore(args.run)
        recorded = (sampled.meta("config") or {}).get("tasks")
        sampled.close()
        if recorded and recorded != "bundled":
            args.tasks = recorded
    tasks = _load(args).tasks
    if args.preds:
        preds = read_preds(args.preds)
        run = args.run or args.preds.stem
    elif not (args.gold or args.empty):
        # A sampling run's finished attempts; the verdicts land in its own store, beside them.
        if not args.run:
            raise SystemExit("error: give --preds FILE, --gold, --empty, or --run NAME for a sampling run")
        run = args.run
        if not (runs_dir() / run / STORE_FILE).is_file():
            raise SystemExit(f"error: no run store at {runs_dir() / run / STORE_FILE}")
        sampled = RunStore(run)
        preds = PredsFile(from_attempts(sampled.attempts(AttemptStatus.DONE)))
        sampled.close()
        if args.existing_tests is None:
            # Selection curves need what a user could see: measure it for sampling runs by default.
            args.existing_tests = True
    else:
        preds = PredsFile(gold(tasks) if args.gold else empty(tasks))
        run = args.run or ("gold" if args.gold else "empty")
    for problem in preds.problems:
        err.print(f"[yellow]bad row[/] {escape(problem)}")
    evaluator = _evaluator(args, run)
    store = RunStore(run)
    with _progress() as progress:
        bar = progress.add_task(f"evaluating into {store.dir}", total=len(preds.predictions))
        try:
            result = evaluate(evaluator, tasks, preds.predictions, store, problems=preds.problems,
                              on_done=lambda _: progress.advance(bar), from_attempts=sampling_run)
        except RunMismatch as refused:
            store.close()
            raise SystemExit(f"error: {refused}") from None
    for line in result.report["monkeys"]["unknown_instances"]:
        err.print(f"[yellow]skipped[/] {escape(line)}")
    for e in result.report["monkeys"]["errors"]:
        err.print(f"[red]error[/] {escape(e['error'])}")
    if args.json:
        print_json(result.report)
    else:
        table = Table(title=f"{len(result.records)} evaluations in {store.dir}")
        for column in ("instance_id", "#", "status", "resolved", "guarded", "flags", "runs", "apply"):
            table.add_column(column)
        for r in result.records[:500]:
            table.add_row(r.instance_id, str(r.index), r.status, "yes" if r.resolved else "no",
                          "yes" if r.resolved_guarded else "no", ", ".join(r.guard_flags), str(r.test_runs),
                          r.apply_method or "")
        out.print(table)
        rep = result.report
        out.print(f"resolved {rep['resolved_instances']} of {rep['submitted_instances']} instances "
                  f"({len(rep['monkeys']['resolved_guarded_ids'])} guarded), {rep['error_instances']} with errors; "
                  f"{rep['monkeys']['test_runs_executed']} test runs executed; report: {store.dir / 'report.json'}")
    store.close()
    return 1 if result.report["error_instances"] else 0


def cmd_audit_flaky(args) -> int:
    tasks = _load(args).tasks
    evaluator = _evaluator(args, f"audit-{os.getpid()}")
    with _progress() as progress:
        bar = progress.add_task("auditing gold and empty patches", total=len(tasks))
        audits = audit_tasks(evaluator, tasks, args.runs, on_done=lambda _: progress.advance(bar))
    report = audit_summary(audits, args.runs)
    if args.json:
        print_json(report)
    else:
        table = Table(title=f"{len(report['flaky_instances'])} of {len(audits)} tasks flaky over {args.runs} runs "
                            f"(share {report['flaky_share']})")
        for column in ("instance_id", "flaky tests (passed/runs)", "gold fails every run", "errors"):
            table.add_column(column)
        for a in audits:
            if a.flaky or a.gold_failing or a.errors:
                tests = "\n".join(f"{t}: " + ", ".join(f"{k} {p}/{n}" for k, (p, n) in c.items())
                                  for t, c in a.flaky_tests.items())
                table.add_row(a.instance_id, escape(tests), escape("\n".join(a.gold_failing)), escape("\n".join(a.errors)))
        out.print(table)
    return 1 if report["error_instances"] else 0


# ---------------------------------------------------------------------------------------------
# report


def cmd_report(args) -> int:
    from harness.scores import report, report_html  # matplotlib and scipy load only here

    tasks = _load(args).tasks
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
    table = Table(title="coverage and cost (coverage: tasks with >= k judged attempts; all tasks: every task asked "
                        "for, one without a verdict as unsolved; unguarded: official resolved)")
    for column in ("run", "tasks asked", "with verdicts", "attempts", "k (all)", "coverage@1", "coverage@max",
                   "all tasks@max", "unguarded@max", "$/attempt", "$/solved"):
        table.add_column(column)
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


# ---------------------------------------------------------------------------------------------
# demo

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
        step = build_parser().parse_args(argv)
        code = step.func(step)
        if code not in (0, None):
            err.print(f"[red]demo stopped:[/] monkeys {' '.join(argv)} exited with {code}")
            return code
    return 0


# ---------------------------------------------------------------------------------------------
# doctor


def cmd_doctor(args) -> int:
    tasks = _load(args).tasks
    checks = run_checks(tasks, fix=args.fix, say=err.print)
    if args.json:
        print_json([{**asdict(c), "status": c.status.value} for c in checks])
    else:
        table = Table(title="monkeys doctor")
        for column in ("check", "status", "detail", "fix"):
            table.add_column(column)
        colours = {CheckStatus.OK: "green", CheckStatus.WARN: "yellow", CheckStatus.FAIL: "red"}
        for c in checks:
            table.add_row(escape(c.name), f"[{colours[c.status]}]{c.status.value}[/]", escape(c.detail), escape(c.fix))
        out.print(table)
    return 1 if any(c.status is CheckStatus.FAIL for c in checks) else 0


# ---------------------------------------------------------------------------------------------
# parser


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                        help="how many things run at once (default: the number of CPUs)")
    tasks_arg = taskargs.parent()
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print JSON instead of a table")

    parser = argparse.ArgumentParser(
        prog="monkeys",
        description="Repeated sampling for coding agents: many independent attempts per task, "
                    "each judged by the task's own tests in a fresh container.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    tasks = commands.add_parser("tasks", help="list and check task sets")
    tasks_commands = tasks.add_subparsers(dest="tasks_command", required=True, metavar="ACTION")
    p = tasks_commands.add_parser("list", parents=[common, tasks_arg, as_json],
                                  help="list the tasks of a task set (default: the bundled suite)")
    p.set_defaults(func=cmd_tasks_list)
    p = tasks_commands.add_parser(
        "check", parents=[common, tasks_arg, as_json],
        help="run each task's tests in its image: FAIL_TO_PASS fail at base and pass with the gold patch, "
             "PASS_TO_PASS pass in both, flaky tasks flake at their documented rate")
    p.add_argument("--runs", type=int, default=40, help="runs of a flaky task's tests in its flaky state (default 40)")
    p.set_defaults(func=cmd_tasks_check)

    images = commands.add_parser("images", help="build or pull task images")
    images_commands = images.add_subparsers(dest="images_command", required=True, metavar="ACTION")
    p = images_commands.add_parser(
        "build", parents=[common, tasks_arg, as_json],
        help="build (or reuse) every image the tasks need: base, environment, one per task")
    p.add_argument("--registry", default=os.environ.get("MONKEYS_REGISTRY", DEFAULT_REGISTRY),
                   help="where python:<version>-slim bases are pulled from, or 'none' to build them from Debian "
                        f"packages (default: $MONKEYS_REGISTRY or {DEFAULT_REGISTRY})")
    p.add_argument("--mirror", default=os.environ.get("MONKEYS_DEBIAN_MIRROR", DEFAULT_MIRROR),
                   help=f"Debian mirror for registry-free bases (default: $MONKEYS_DEBIAN_MIRROR or {DEFAULT_MIRROR})")
    p.add_argument("--recipes", type=Path, default=None, metavar="FILE",
                   help="environment recipes per repo and version (TOML) for tasks that have no image of their own: "
                        "the images are built from them and tagged with the official names")
    p.add_argument("--repo-mirror", type=Path, action="append", default=[], metavar="DIR",
                   help="a folder of bare git mirrors (owner__name.git); repeatable. Repositories found in none "
                        "are cloned once into the cache")
    p.set_defaults(func=cmd_images_build)
    p = images_commands.add_parser(
        "pull", parents=[common, tasks_arg, as_json],
        help="fetch the tasks' prebuilt images ahead of a run (an image already here is kept as it is)")
    p.add_argument("--registry", default=os.environ.get("MONKEYS_PULL_REGISTRY"), metavar="HOST[:PORT]",
                   help="pull from this registry or mirror instead of Docker Hub (default: $MONKEYS_PULL_REGISTRY)")
    p.add_argument("--retries", type=int, default=6, help="tries per image when rate-limited (default 6)")
    p.set_defaults(func=cmd_images_pull)

    judging = argparse.ArgumentParser(add_help=False)
    judging.add_argument("--policy", choices=[p.value for p in Policy], default=Policy.MAJORITY.value,
                         help="how a test's outcomes over reruns become one: strict (passed every run), majority "
                              "(passed in more than half; default) or ignore-flaky (audited-flaky tests dropped)")
    judging.add_argument("--reruns", type=int, default=PAPER_RUNS,
                         help=f"runs a verdict gets when it hinges on a flaky test (default {PAPER_RUNS}, as in the paper)")
    judging.add_argument("--audit-runs", type=int, default=DEFAULT_AUDIT_RUNS,
                         help=f"runs of each task's gold patch in its flaky audit, cached per image (default {DEFAULT_AUDIT_RUNS})")
    judging.add_argument("--timeout", type=float, default=1800.0,
                         help="seconds one run of the tests may take (default 1800); a patch whose tests outrun it "
                              "while the gold runs finish in under half of it is timed_out (unresolved)")
    judging.add_argument("--existing-tests", action=argparse.BooleanOptionalAction, default=None,
                         help="also run the repository's existing tests without the hidden test patch, for each patch "
                              "and for no patch: what selection curves may use (default: on for --run of a sampling "
                              "run, off otherwise)")

    p = commands.add_parser(
        "evaluate", parents=[common, tasks_arg, as_json, judging],
        help="judge patches: each in a fresh container from its task's image, tests rerun while a verdict hinges "
             "on a flaky test, graded as the official SWE-bench harness does, with guards beside")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--preds", type=Path, metavar="FILE",
                        help="SWE-bench predictions (JSONL or JSON: instance_id, model_name_or_path, model_patch), "
                             "any number of rows per instance")
    source.add_argument("--gold", action="store_true", help="the task set's own gold patches")
    source.add_argument("--empty", action="store_true", help="the empty patch for every task")
    p.add_argument("--run", default=None,
                   help="alone: the finished attempts of the sampling run runs/RUN/, judged into its store; with "
                        "--preds/--gold/--empty: where results land (default: the preds file's stem, or gold/empty). "
                        "Calling again re-grades from cached test runs and retries infrastructure errors")
    p.set_defaults(func=cmd_evaluate)

    p = commands.add_parser(
        "audit-flaky", parents=[common, tasks_arg, as_json, judging],
        help="run each task's gold and empty patches R times: flaky tests with pass counts, tasks whose gold "
             "patch fails every time, and the share of tasks affected")
    p.add_argument("--runs", type=int, default=20, help="runs per patch (default 20)")
    p.set_defaults(func=cmd_audit_flaky)

    p = commands.add_parser(
        "doctor", parents=[common, tasks_arg, as_json],
        help="check the Docker engine, disk, images and model backends, with a fix for each problem")
    p.add_argument("--fix", action="store_true",
                   help="install and start a Docker engine where none answers (root on Debian/Ubuntu)")
    p.set_defaults(func=cmd_doctor)

    sampling.add_parsers(commands, common, tasks_arg, as_json)

    p = commands.add_parser(
        "report", parents=[tasks_arg, as_json],
        help="coverage by k with bootstrap intervals, selection without hidden tests, scaling fits and cost, for "
             "one or more sampling runs side by side; writes an HTML report")
    p.add_argument("runs", nargs="+", metavar="RUN")
    p.add_argument("--out", type=Path, default=None, help="HTML path (default runs/<first run>/report.html)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for intervals (default 1000)")
    p.set_defaults(func=cmd_report)

    p = commands.add_parser(
        "demo", parents=[common],
        help="the main job on the embedded defaults: bundled images, the bundled CPU model (Gemma 3 270M on "
             "llama.cpp) sampling the bundled suite, evaluation, and the report")
    p.add_argument("-k", type=int, default=DEMO_K, help=f"attempts per task (default {DEMO_K})")
    p.add_argument("--run", default=DEMO_RUN, help=f"run name (default {DEMO_RUN}; rerunning resumes it)")
    p.set_defaults(func=cmd_demo)
    return parser


# Commands that start containers: a watchdog removes them even if this process is SIGKILLed.
_MAKE_CONTAINERS = {"cmd_sample", "cmd_evaluate", "cmd_audit_flaky", "cmd_tasks_check", "cmd_demo"}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    guard = None
    if args.func.__name__ in _MAKE_CONTAINERS:
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
