"""``monkeys report``'s summary at the paper's scale, as a ratio against a baseline from the same run.

    .venv/bin/python bench/report_scale.py [--small 750] [--large 75000] [--tasks 300] [--bootstrap 1000]

``report.summarize`` is pure: it reads a run's records, not the store, so this builds the records
bench/store_scale.py writes (``synthetic_records``: ~2 KB patches, every task solved at the same
rate, 0.3) straight into a ``RunData`` and times ``summarize`` on ``--small`` and ``--large``
attempts, ``--bootstrap`` resamples as ``monkeys report`` uses. For each size it prints the total
and its largest parts: matching verdicts to patches (``task_attempts``, which hashes every patch),
the coverage and selection curves, and the scaling fits. The last line is the total at ``--large``
over the total at ``--small``, against the record ratio.

The synthetic tasks all share one solve rate, so the scaled-Beta variant of the distributional fit
has a flat ridge of equally good (s, α, β) and its optimiser runs to its evaluation cap in nearly
every bootstrap resample: a worst case for the fits, which real runs (rates spread over tasks)
reach in a few dozen evaluations.
"""

from __future__ import annotations

import argparse
import time

from harness.scores import report
from harness.scores.coverage import Selection, coverage_curve, ks_up_to, max_common_k, selection_curves
from store_scale import MODEL, synthetic_records  # beside this file, on sys.path when run as a script


def run_data(n: int, tasks: int) -> report.RunData:
    """``n`` synthetic attempts over ``tasks`` tasks, each evaluated, as ``report.load`` returns them."""
    records = synthetic_records(n, tasks)
    return report.RunData(f"scale-{n}", {"model": {"model": MODEL}, "scaffold": "bash"},
                          [a for a, _ in records], [e for _, e in records],
                          requested=[f"repo__project-{i:05d}" for i in range(tasks)])


def measure(n: int, tasks: int, bootstrap: int) -> dict[str, float]:
    """Seconds ``summarize`` takes on ``n`` attempts, and seconds of its parts run alone."""
    data = run_data(n, tasks)
    started = time.perf_counter()
    summary = report.summarize(data, bootstrap=bootstrap)
    total = time.perf_counter() - started
    assert summary["judged_attempts"] == n, summary["judged_attempts"]
    parts = {}
    started = time.perf_counter()
    judged = [t for t in report.task_attempts(data) if t.n > 0]
    parts["task_attempts"] = time.perf_counter() - started
    ks = ks_up_to(max(t.n for t in judged))
    started = time.perf_counter()
    coverage_curve(judged, ks, bootstrap=bootstrap)
    parts["coverage"] = time.perf_counter() - started
    started = time.perf_counter()
    selection_curves(judged, list(Selection), ks, bootstrap=bootstrap)
    parts["selection"] = time.perf_counter() - started
    started = time.perf_counter()
    report._fits(judged, max_common_k(judged), 0)
    parts["fits"] = time.perf_counter() - started
    return {"summarize_s": total, **parts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=750, help="attempts in the baseline run (default 750)")
    parser.add_argument("--large", type=int, default=75_000, help="attempts in the large run (default 75,000)")
    parser.add_argument("--tasks", type=int, default=300, help="tasks the attempts spread over (default 300)")
    parser.add_argument("--bootstrap", type=int, default=1000,
                        help="bootstrap resamples of the coverage curves (default 1000, as `monkeys report`)")
    args = parser.parse_args()

    results = {}
    for n in (args.small, args.large):
        r = results[n] = measure(n, args.tasks, args.bootstrap)
        parts = ", ".join(f"{name} {r[name]:.2f} s" for name in ("task_attempts", "coverage", "selection", "fits"))
        print(f"{n:>7} attempts: summarize {r['summarize_s']:.2f} s ({parts})", flush=True)
    scale = args.large / args.small
    print(f"ratio report summarize seconds {args.large} vs {args.small}: "
          f"{results[args.large]['summarize_s'] / results[args.small]['summarize_s']:.1f} for {scale:.0f}x the records")


if __name__ == "__main__":
    main()
