"""Evaluation cost on the bundled suite, each figure a ratio against a baseline from the same run.

    .venv/bin/python bench/evaluate.py [--variants 2] [--workers 2]

Needs the bundled images (`monkeys images build`). Uses a fresh evaluation cache and run folder in a
temporary directory, so nothing measured comes from earlier runs. Prints:

1. test executions per unique patch on non-flaky tasks, default policy (goal: at most 1.1), after
   the gold audits (paid once per image, printed on their own);
2. the fixed cost of one evaluation outside its tests (container start, patch apply, cleanup):
   median, beside the median time of the tests themselves (goal: at most 0.5 s);
3. test runs for a preds file in which half the rows repeat the other half's patches, against an
   all-unique preds file of the same length (goal: 0.5);
4. what independent reruns cost: seconds per run when each of R runs of one patch gets a fresh
   container (apply and setup included, as evaluations run them), against R runs of the test command
   in one container after one apply and setup (the old way, timed here by hand).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from harness import engine
from harness.evalcache import EvalCache
from harness.evalscript import eval_files, needs_network, plan
from harness.evalconfig import EvalConfig
from harness.evaluate import Evaluator, evaluate
from harness.image_names import image_name
from harness.predictions import Prediction, gold
from harness.store import EvalStatus, RunStore
from harness.tasks import load_tasks


def variant(patch: str, n: int) -> str:
    """``patch`` plus a new file: a distinct patch that changes no test outcome."""
    return patch + (f"diff --git a/bench_{n}.txt b/bench_{n}.txt\nnew file mode 100644\n--- /dev/null\n"
                    f"+++ b/bench_{n}.txt\n@@ -0,0 +1 @@\n+variant {n}\n")


def run(evaluator, tasks, preds, root: Path, name: str):
    store = RunStore(name, root=root)
    started = time.monotonic()
    result = evaluate(evaluator, tasks, preds, store)
    store.close()
    errors = [r.error for r in result.records if r.status == EvalStatus.ERROR.value]
    if errors:
        sys.exit(f"{name}: {len(errors)} evaluations failed, e.g. {errors[0]}")
    return result, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", type=int, default=2, help="unique patches per task and kind (default 2)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reruns", type=int, default=11, help="runs of one patch in measure 4 (default 11)")
    args = parser.parse_args()

    tasks = [t for t in load_tasks().tasks if not t.flaky]
    client = engine.connect()
    with tempfile.TemporaryDirectory(prefix="monkeys-bench-") as tmp:
        root = Path(tmp)
        evaluator = Evaluator(client, EvalCache(root / "evaluations.sqlite"), EvalConfig(workers=args.workers), run="bench")
        result, seconds = run(evaluator, tasks, gold(tasks), root / "runs", "audit")
        audit_runs = result.report["monkeys"]["audit_runs_executed"]
        print(f"gold audits: {audit_runs} test runs for {len(tasks)} tasks in {seconds:.1f} s (once per image)")

        # 1 and 2: unique patches, half fixing the task and half not.
        counter = iter(range(10**6))
        unique = [Prediction(t.instance_id, "bench", variant(patch, next(counter)), i, "bench")
                  for t in tasks for i, patch in enumerate([t.patch] * args.variants + [""] * args.variants)]
        result, seconds = run(evaluator, tasks, unique, root / "runs", "unique")
        executed = result.report["monkeys"]["test_runs_executed"]
        patches = result.report["monkeys"]["unique_patches"]
        print(f"1. test executions per unique patch (non-flaky tasks, majority policy): "
              f"{executed} / {patches} = {executed / patches:.3f}  (goal <= 1.1)")
        ran = [r for r in result.records if r.new_test_runs]
        overhead = statistics.median(r.overhead_seconds for r in ran)
        tests_time = statistics.median(r.test_seconds / r.new_test_runs for r in ran)
        print(f"2. fixed cost per evaluation outside the tests: median {overhead:.3f} s "
              f"(p90 {statistics.quantiles([r.overhead_seconds for r in ran], n=10)[-1]:.3f} s); "
              f"the tests themselves: median {tests_time:.3f} s; ratio {overhead / tests_time:.2f}  (goal: fixed <= 0.5 s)")

        # 3: the same number of rows, all unique vs half repeating the other half.
        rows = len(unique)
        baseline = [Prediction(p.instance_id, "bench", variant(p.patch, next(counter)), p.index, "bench") for p in unique]
        halves = baseline[: rows // 2]
        fresh = [Prediction(p.instance_id, "bench", variant(p.patch, next(counter)), p.index, "bench") for p in halves]
        repeated = fresh + [Prediction(p.instance_id, "bench", p.patch, p.index + 1000, "bench") for p in fresh]
        base_result, _ = run(evaluator, tasks, baseline, root / "runs", "all-unique")
        dup_result, _ = run(evaluator, tasks, repeated, root / "runs", "half-repeated")
        base_runs = base_result.report["monkeys"]["test_runs_executed"]
        dup_runs = dup_result.report["monkeys"]["test_runs_executed"]
        print(f"3. test runs, {rows} rows half repeating vs {rows} unique rows: {dup_runs} / {base_runs} = "
              f"{dup_runs / base_runs:.3f}  (goal 0.5)")

        # 4: R independent runs (fresh containers) against R runs in one container.
        task = tasks[0]
        patch = variant(task.patch, next(counter))
        started = time.monotonic()
        measured = evaluator.measure(task, patch, lambda _: args.reruns)
        fresh_per_run = (time.monotonic() - started) / args.reruns
        steps = plan(task)
        with evaluator.runtime.open(image_name(task), files=eval_files(task, patch), network=needs_network(task)) as box:
            box.exec(steps.apply, timeout=300)
            box.exec(steps.setup, timeout=300)
            started = time.monotonic()
            for _ in range(args.reruns):
                box.exec(steps.test, timeout=300)
            same_per_run = (time.monotonic() - started) / args.reruns
        assert measured.new_runs == args.reruns, measured.error
        print(f"4. {args.reruns} runs of one patch ({task.instance_id}): fresh container per run {fresh_per_run:.3f} s/run, "
              f"one container {same_per_run:.3f} s/run; ratio {fresh_per_run / same_per_run:.2f} "
              f"(+{fresh_per_run - same_per_run:.3f} s per rerun for independence)")
        evaluator.cache.close()


if __name__ == "__main__":
    main()
