"""The run store at the paper's scale, each figure a ratio against a baseline from the same run.

    .venv/bin/python bench/store_scale.py [--small 750] [--large 75000] [--tasks 300] [--summarize]

The paper's SWE-bench Lite run is 250 attempts x 300 tasks = 75,000 attempts, each evaluated. This
writes that many synthetic attempts (a ~2 KB patch and the details a sampler records) and as many
evaluation records through the run store's public API (``RunStore.save_attempt``, then
``RunStore.save_evaluation``, one call per record as the sampler and the evaluation make them, in a
shuffled order as workers finish them), into a fresh store in a temporary directory; then, with the
writer still open as during a run, reads it as ``monkeys report`` does (``harness.scores.report.load``,
the only part of the report that touches the store); with ``--summarize``, also computes the report
from it (``report.summarize``, pure, timed apart: its scaling fits dominate and have nothing to do
with the store). No model, container or trajectory is involved. Prints, at ``--small`` and
``--large`` attempts each:

1. records written per second (attempts and evaluations together);
2. the store's size on disk (the SQLite file and its write-ahead log);
3. seconds ``report.load`` takes (and ``report.summarize`` on what it loaded, with ``--summarize``);

and on the last lines each figure at ``--large`` over the same figure at ``--small``: records/s
should stay near 1, load seconds near the record ratio (linear), never worse.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from harness.patches import patch_hash
from harness.scores import report
from harness.store import (STORE_FILE, TASKS_META, AttemptStatus, EvalRecord, EvalStatus, RunStore,
                           StoredAttempt)

MODEL = "bench-model"
PATCH_BYTES = 2048


def synthetic_patch(rng: random.Random, instance_id: str, index: int) -> str:
    """A unified diff of about ``PATCH_BYTES`` bytes, distinct per attempt (SQLite stores it as is)."""
    header = (f"diff --git a/src/{instance_id}.py b/src/{instance_id}.py\n--- a/src/{instance_id}.py\n"
              f"+++ b/src/{instance_id}.py\n@@ -1,40 +1,40 @@\n")
    lines = [header]
    size = len(header)
    while size < PATCH_BYTES:
        line = f"+    value_{index}_{rng.getrandbits(48):012x} = compute(value, {rng.randint(0, 10**6)})\n"
        lines.append(line)
        size += len(line)
    return "".join(lines)


def synthetic_records(n: int, tasks: int, seed: int = 0) -> list[tuple[StoredAttempt, EvalRecord]]:
    """``n`` attempts spread over ``tasks`` tasks (index ``i // tasks``), each with its evaluation,
    shuffled as a run's workers would finish them."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        instance_id, index = f"repo__project-{i % tasks:05d}", i // tasks
        patch = synthetic_patch(rng, instance_id, index)
        details = {"instance_id": instance_id, "index": index, "seed": rng.getrandbits(31), "exit_reason": "submitted",
                   "usage": {"input_tokens": rng.randint(10**4, 10**5), "output_tokens": rng.randint(10**3, 10**4),
                             "cached_input_tokens": 0},
                   "dollars": rng.random() / 10, "steps": rng.randint(3, 40), "retries": 0,
                   "wall_seconds": rng.random() * 300, "model_seconds": rng.random() * 200,
                   "container_seconds": rng.random() * 100, "error": "", "patch_base": "0" * 40,
                   "scaffold": "bash", "temperature": 0.8, "calls_without_usage": 0,
                   "price": {"kind": "tokens", "unit": "USD per million tokens", "input": 0.15,
                             "cached_input": 0.075, "output": 0.6, "source": "bench"},
                   "trajectory": f"trajectories/{instance_id}/{index}.json", "patch_hash": patch_hash(patch)}
        attempt = StoredAttempt(instance_id, index, MODEL, patch, AttemptStatus.DONE.value, details)
        resolved = rng.random() < 0.3
        evaluation = EvalRecord(
            instance_id, index, MODEL, details["patch_hash"], EvalStatus.GRADED.value, resolved=resolved,
            resolved_guarded=resolved, pass_to_pass_ok=True, existing_tests_ok=True, apply_method="git apply",
            test_runs=1, new_test_runs=1, test_seconds=rng.random() * 30, overhead_seconds=rng.random() * 3,
            path=f"evaluations/{instance_id}/{index}")
        records.append((attempt, evaluation))
    rng.shuffle(records)
    return records


def measure(n: int, tasks: int, root: Path, bootstrap: int | None) -> dict[str, float]:
    """Write ``n`` attempts and evaluations into a fresh store under ``root``, then read it as a report."""
    records = synthetic_records(n, tasks)
    run = f"scale-{n}"
    store = RunStore(run, root=root)
    store.set_meta(TASKS_META, {f"repo__project-{i:05d}": "hash" for i in range(tasks)})
    store.set_meta("fingerprint", {"model": {"model": MODEL}, "scaffold": "bash"})
    started = time.perf_counter()
    for attempt, _ in records:
        store.save_attempt(attempt)
    for _, evaluation in records:
        store.save_evaluation(evaluation)
    write_seconds = time.perf_counter() - started
    size = sum(p.stat().st_size for p in store.dir.glob(STORE_FILE + "*"))
    # The writer stays open, as when a report is asked for while a run goes on.
    started = time.perf_counter()
    data = report.load(run, root)
    load_seconds = time.perf_counter() - started
    assert len(data.attempts) == n and len(data.evaluations) == n, (len(data.attempts), len(data.evaluations))
    summarize_seconds = float("nan")
    if bootstrap is not None:
        started = time.perf_counter()
        summary = report.summarize(data, bootstrap=bootstrap)
        summarize_seconds = time.perf_counter() - started
        assert summary["judged_attempts"] == n, summary["judged_attempts"]
    store.close()
    return {"records_per_s": 2 * n / write_seconds, "write_s": write_seconds, "bytes": size,
            "load_s": load_seconds, "summarize_s": summarize_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=750, help="attempts in the baseline store (default 750)")
    parser.add_argument("--large", type=int, default=75_000, help="attempts in the large store (default 75,000)")
    parser.add_argument("--tasks", type=int, default=300, help="tasks the attempts spread over (default 300)")
    parser.add_argument("--summarize", action="store_true",
                        help="also time report.summarize (1000 bootstrap resamples, as `monkeys report`); slow")
    args = parser.parse_args()

    results = {}
    with tempfile.TemporaryDirectory(prefix="monkeys-bench-") as tmp:
        for n in (args.small, args.large):
            r = results[n] = measure(n, args.tasks, Path(tmp), 1000 if args.summarize else None)
            print(f"{n:>7} attempts + {n} evaluations: {r['records_per_s']:,.0f} records/s "
                  f"({r['write_s']:.1f} s), store {r['bytes'] / 2**20:.1f} MiB "
                  f"({r['bytes'] / (2 * n):,.0f} B/record), report load {r['load_s']:.3f} s"
                  + (f", summarize {r['summarize_s']:.3f} s" if args.summarize else ""), flush=True)
    small, large = results[args.small], results[args.large]
    scale = args.large / args.small
    print(f"ratio records/s {args.large} vs {args.small}: {large['records_per_s'] / small['records_per_s']:.2f} (goal ~1)")
    print(f"ratio store bytes: {large['bytes'] / small['bytes']:.1f} for {scale:.0f}x the records")
    if args.summarize:
        print(f"ratio report summarize seconds: {large['summarize_s'] / small['summarize_s']:.1f} "
              f"for {scale:.0f}x the records")
    print(f"ratio report load seconds: {large['load_s'] / small['load_s']:.1f} for {scale:.0f}x the records "
          f"(goal <= {scale:.0f}, linear)")


if __name__ == "__main__":
    main()
