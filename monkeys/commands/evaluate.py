"""``monkeys evaluate`` and ``monkeys audit-flaky``: judging patches in the tasks' images, with the
judging options the two share."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from harness import engine
from harness.audit_flaky import audit_tasks, summary as audit_summary
from harness.config import runs_dir
from harness.evalcache import EvalCache
from harness.evalconfig import DEFAULT_AUDIT_RUNS, EvalConfig
from harness.evaluate import Evaluator, Jobs, RunMismatch, evaluate
from harness.grading import PAPER_RUNS, Policy
from harness.predictions import AttemptChanged, PredsFile, StoredPredictions, empty, gold, read_preds
from harness.store import STORE_FILE, RunStore
from monkeys import options
from monkeys.display import err, out, print_json, progress_bars
from monkeys.options import SharedOptions


def make_evaluator(args, run: str) -> Evaluator:
    """An evaluator on the Docker engine for ``run``, configured by the judging options given (a
    command without them, such as tasks check, gets EvalConfig's defaults); stale containers of the
    run are removed first."""
    given = {name: getattr(args, name) for name in ("reruns", "audit_runs", "timeout", "existing_tests")
             if getattr(args, name, None) is not None}
    if hasattr(args, "policy"):
        given["policy"] = Policy(args.policy)
    config = EvalConfig(workers=args.workers, **given)
    client = engine.connect()
    evaluator = Evaluator(client, EvalCache(), config, run=run)
    evaluator.runtime.reap()
    return evaluator


def cluster_jobs(args, evaluator: Evaluator, tasks) -> Jobs | None:
    """With ``--cluster``: the jobs as Ray tasks across it (nodes get missing images as the cluster
    options say); without: None, the jobs run here."""
    if not args.cluster:
        return None
    try:
        from harness.cluster import RayJobs  # Ray is an optional extra: imported only when asked for
    except ImportError as missing:
        raise SystemExit(f"error: --cluster needs Ray ({missing}); install it with pip install 'monkeys[ray]'") from None
    return RayJobs(evaluator, args.cluster, tasks, options.node_images(args))


def cmd_evaluate(args) -> int:
    sampling_run = not (args.preds or args.gold or args.empty)
    if sampling_run and args.run and args.tasks is None and (runs_dir() / args.run / STORE_FILE).is_file():
        # Judge a sampling run against the task set it was sampled from, unless told otherwise.
        sampled = RunStore(args.run)
        recorded = (sampled.meta("config") or {}).get("tasks")
        sampled.close()
        if recorded and recorded != "bundled":
            args.tasks = recorded
    tasks = options.load(args).tasks
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
        # Read from the run's store as each is judged, not held: the verdicts land in the same store.
        preds = PredsFile(StoredPredictions(RunStore(run)))
        if args.existing_tests is None:
            # Selection curves need what a user could see: measure it for sampling runs by default.
            args.existing_tests = True
    else:
        preds = PredsFile(gold(tasks) if args.gold else empty(tasks))
        run = args.run or ("gold" if args.gold else "empty")
    for problem in preds.problems:
        err.print(f"[yellow]bad row[/] {escape(problem)}")
    evaluator = make_evaluator(args, run)
    jobs = cluster_jobs(args, evaluator, tasks)
    store = preds.predictions.store if isinstance(preds.predictions, StoredPredictions) else RunStore(run)
    with progress_bars() as progress:
        # Records stream in as each job ends, so the bar moves from the first one; predictions for tasks
        # not in the task set are never judged, so they are not counted.
        ids = {t.instance_id for t in tasks}
        bar = progress.add_task(f"evaluating into {store.dir}",
                                total=sum(p.instance_id in ids for p in preds.predictions))
        try:
            result = evaluate(evaluator, tasks, preds.predictions, store, problems=preds.problems,
                              on_done=lambda _: progress.advance(bar), from_attempts=sampling_run, jobs=jobs)
        except (RunMismatch, AttemptChanged) as refused:
            store.close()
            raise SystemExit(f"error: {refused}") from None
    for line in result.report["monkeys"]["unknown_instances"]:
        err.print(f"[yellow]skipped[/] {escape(line)}")
    for e in result.report["monkeys"]["errors"]:
        err.print(f"[red]error[/] {escape(e['error'])}")
    if args.json:
        print_json(result.report)
    else:
        table = Table("instance_id", "#", "status", "resolved", "guarded", "flags", "runs", "apply",
                      title=f"{len(result.records)} evaluations in {store.dir}")
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
    tasks = options.load(args).tasks
    evaluator = make_evaluator(args, f"audit-{os.getpid()}")
    with progress_bars() as progress:
        bar = progress.add_task("auditing gold and empty patches", total=len(tasks))
        audits = audit_tasks(evaluator, tasks, args.runs, on_done=lambda _: progress.advance(bar),
                             jobs=cluster_jobs(args, evaluator, tasks))
    report = audit_summary(audits, args.runs)
    if args.json:
        print_json(report)
    else:
        table = Table("instance_id", "flaky tests (passed/runs)", "gold fails every run", "errors",
                      title=f"{len(report['flaky_instances'])} of {len(audits)} tasks flaky over {args.runs} runs "
                            f"(share {report['flaky_share']})")
        for a in audits:
            if a.flaky or a.gold_failing or a.errors:
                tests = "\n".join(f"{t}: " + ", ".join(f"{k} {p}/{n}" for k, (p, n) in c.items())
                                  for t, c in a.flaky_tests.items())
                table.add_row(a.instance_id, escape(tests), escape("\n".join(a.gold_failing)), escape("\n".join(a.errors)))
        out.print(table)
    return 1 if report["error_instances"] else 0


def _judging_options() -> argparse.ArgumentParser:
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
    return judging


def add_parsers(commands, shared: SharedOptions) -> None:
    """``evaluate`` and ``audit-flaky``."""
    judging = _judging_options()
    p = commands.add_parser(
        "evaluate", parents=[shared.workers, shared.task_set, shared.json, judging, shared.cluster],
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
    p.set_defaults(func=cmd_evaluate, makes_containers=True)

    p = commands.add_parser(
        "audit-flaky", parents=[shared.workers, shared.task_set, shared.json, judging, shared.cluster],
        help="run each task's gold and empty patches R times: flaky tests with pass counts, tasks whose gold "
             "patch fails every time, and the share of tasks affected")
    p.add_argument("--runs", type=int, default=20, help="runs per patch (default 20)")
    p.set_defaults(func=cmd_audit_flaky, makes_containers=True)
