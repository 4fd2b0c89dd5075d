"""Extrapolating coverage from a tenth of the attempts: the distributional model against the
exp(a k^b) curve fit, on synthetic runs shaped like Schaeffer et al. 2025, each figure a ratio
against the curve fit measured in the same run.

    .venv/bin/python bench/extrapolate.py [--seeds 5] [--tasks 300] [--attempts 250] [--fit-attempts 25]

Needs nothing but numpy and scipy. Each seed draws a run: ``--tasks`` tasks, each with its own
single-attempt success probability p from a heavy-left-tail distribution (by default p = 0 for 30%
of tasks, else 0.9 · Beta(0.2, 0.8): coverage about 0.13 at k = 1 and 0.5 at k = 250, the shape of
SWE-bench Lite under repeated sampling), and ``--attempts`` independent attempts per task. Both
models see only each task's first ``--fit-attempts`` attempts:

* the distributional model (``harness.scores.fits.extrapolate_distribution``) is fitted to the truncated
  (n, c) counts and asked for coverage at k = ``--attempts``;
* the exp(a k^b) law (``harness.scores.fits.extrapolate_power_law``, the baseline) is fitted to the
  truncated coverage curve (mean unbiased pass@k) at every k = 1..``--fit-attempts`` and asked
  the same.

The target is the coverage measured on all attempts (share of tasks solved at least once). Prints
per seed the measured value, each model's prediction with its 95% bootstrap interval and its
relative error; then the mean relative errors, how many intervals contain the measured value, and
the headline ratio: curve-fit error / distributional error (the paper reports about an order of
magnitude, for its forecasts of the power-law exponent).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from harness.scores.fits import FitStatus, TaskDistribution, extrapolate_distribution, extrapolate_power_law
from harness.scores.judged import JudgedAttempt, TaskAttempts


def synthetic_run(seed: int, truth: TaskDistribution, tasks: int, attempts: int) -> list[TaskAttempts]:
    """``tasks`` tasks with p drawn from ``truth`` and ``attempts`` independent attempts each."""
    rng = np.random.default_rng(seed)
    p = truth.scale * rng.beta(truth.alpha, truth.beta, size=tasks)
    p[rng.random(tasks) < truth.zero] = 0.0
    solved = rng.random((tasks, attempts)) < p[:, None]
    return [TaskAttempts(f"t{i}", tuple(JudgedAttempt(j, bool(s), "") for j, s in enumerate(row)))
            for i, row in enumerate(solved)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--attempts", type=int, default=250, help="attempts per task drawn (the k predicted)")
    parser.add_argument("--fit-attempts", type=int, default=25, help="attempts per task the models see")
    parser.add_argument("--bootstrap", type=int, default=100)
    parser.add_argument("--alpha", type=float, default=0.2)
    parser.add_argument("--beta", type=float, default=0.8)
    parser.add_argument("--scale", type=float, default=0.9)
    parser.add_argument("--zero", type=float, default=0.3)
    args = parser.parse_args()

    truth = TaskDistribution(args.alpha, args.beta, args.scale, args.zero)
    k_far, k_fit = args.attempts, args.fit_attempts
    print(f"truth: p = 0 w.p. {truth.zero}, else {truth.scale} * Beta({truth.alpha}, {truth.beta}); "
          f"{args.tasks} tasks x {k_far} attempts, models fitted on the first {k_fit}; "
          f"population coverage at k={k_far}: {truth.coverage(k_far):.3f}")
    dist_errors, law_errors = [], []
    dist_inside, law_inside = 0, 0
    for seed in range(args.seeds):
        run = synthetic_run(seed, truth, args.tasks, k_far)
        measured = sum(1 for t in run if t.c) / len(run)
        seen = [t.first(k_fit) for t in run]
        started = time.monotonic()
        dist = extrapolate_distribution(seen, [k_far], bootstrap=args.bootstrap, seed=seed)
        dist_seconds = time.monotonic() - started
        started = time.monotonic()
        law = extrapolate_power_law(seen, list(range(1, k_fit + 1)), [k_far], bootstrap=args.bootstrap, seed=seed)
        law_seconds = time.monotonic() - started
        line = f"seed {seed}: measured {measured:.3f}"
        if dist.curve:
            p = dist.curve[0]
            error = abs(p.value - measured) / measured
            dist_errors.append(error)
            dist_inside += p.low <= measured <= p.high
            d = dist.fit.distribution
            assert d is not None and dist.fit.variant is not None
            line += (f" | distributional ({dist.fit.variant.value}, alpha {d.alpha:.3f} "
                     f"[{dist.exponent_low:.3f}, {dist.exponent_high:.3f}], plateau {d.plateau:.3f}) "
                     f"{p.value:.3f} [{p.low:.3f}, {p.high:.3f}] rel. error {error:.3f} ({dist_seconds:.1f} s)")
        else:
            line += f" | distributional: no prediction ({dist.fit.status.value}: {dist.fit.reason})"
        if law.curve:
            p = law.curve[0]
            error = abs(p.value - measured) / measured
            law_errors.append(error)
            law_inside += p.low <= measured <= p.high
            line += (f" | exp(a k^b) (a {law.fit.a:.3f}, b {law.fit.b:.3f}) {p.value:.3f} [{p.low:.3f}, {p.high:.3f}] "
                     f"rel. error {error:.3f} ({law_seconds:.1f} s)")
        else:
            assert law.fit.status is not FitStatus.OK
            line += f" | exp(a k^b): no prediction ({law.fit.status.value}: {law.fit.reason})"
        print(line)
    if not dist_errors or not law_errors:
        print("no ratio: a model gave no prediction on every seed")
        return
    dist_mean, law_mean = statistics.mean(dist_errors), statistics.mean(law_errors)
    print(f"mean relative error at k={k_far}: distributional {dist_mean:.4f} over {len(dist_errors)} seeds, "
          f"exp(a k^b) {law_mean:.4f} over {len(law_errors)} seeds")
    print(f"95% intervals containing the measured coverage: distributional {dist_inside} of {len(dist_errors)}, "
          f"exp(a k^b) {law_inside} of {len(law_errors)}")
    print(f"curve-fit error / distributional error: {law_mean / dist_mean:.2f}  (paper: about 10)")


if __name__ == "__main__":
    main()
