"""Scores from judged attempts: coverage (pass@k), what a user could select without the hidden
tests, and how solve rates spread over tasks.

Each task has its own n (attempts lost to infrastructure are absent, not failures), so every score
at k averages only the tasks that reached k attempts, and each ``CurvePoint`` says how many did.
Intervals are percentile bootstraps over tasks: the tasks are the sample we want to generalise
from, while the attempts within a task are already averaged out exactly (pass@k) or nearly so
(selection draws).

Everything here is a pure function of its arguments; randomness comes only from seeded numpy
Generators, so the same inputs and seed give the same numbers.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np

from harness.scores.judged import JudgedAttempt, TaskAttempts

__all__ = [
    "CurvePoint",
    "Selection",
    "SolveRates",
    "coverage_curve",
    "default_ks",
    "max_common_k",
    "pass_at_k",
    "selection_curve",
    "selection_curves",
    "selection_success",
    "solve_rate_histogram",
    "solve_rates",
]


# --------------------------------------------------------------------------- pass@k and coverage


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimate of the chance that ``k`` attempts drawn without replacement from ``n``
    attempts, ``c`` of them solved, include a solved one (Chen et al. 2021).

    Computed as ``1 - prod_{i=n-c+1}^{n} (1 - k/i)``, which equals ``1 - C(n-c, k) / C(n, k)``
    without forming binomials that overflow a float for large n. Raises ValueError for k < 1,
    k > n, c > n or a negative argument.
    """
    n, c, k = operator.index(n), operator.index(c), operator.index(k)
    if n < 0 or c < 0:
        raise ValueError(f"n and c must be non-negative, got n={n}, c={c}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if k > n:
        raise ValueError(f"k={k} exceeds the n={n} attempts made")
    if c > n:
        raise ValueError(f"c={c} solved exceeds the n={n} attempts made")
    if n - c < k:
        # Every k-subset must contain a solved attempt.
        return 1.0
    return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1, dtype=np.float64)))


@dataclass(frozen=True)
class CurvePoint:
    """One point of a curve: the mean over ``tasks`` tasks at ``k`` with its bootstrap interval."""

    k: int
    value: float
    low: float
    high: float
    tasks: int


def max_common_k(tasks: Sequence[TaskAttempts]) -> int:
    """The largest k every task with at least one attempt reaches (its smallest n); 0 if none."""
    ns = [t.n for t in tasks if t.n > 0]
    return min(ns) if ns else 0


def ks_up_to(limit: int) -> list[int]:
    """1, 2, 4, 8, ... up to ``limit``, plus ``limit`` itself; [] when ``limit`` < 1."""
    ks = [1 << i for i in range(limit.bit_length()) if 1 << i <= limit] if limit >= 1 else []
    if ks and ks[-1] != limit:
        ks.append(limit)
    return ks


def default_ks(tasks: Sequence[TaskAttempts]) -> list[int]:
    """1, 2, 4, 8, ... up to the largest n, plus the largest n itself; [] when no task has attempts."""
    return ks_up_to(max((t.n for t in tasks), default=0))


def coverage_curve(
    tasks: Sequence[TaskAttempts],
    ks: Sequence[int] | None = None,
    *,
    bootstrap: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> list[CurvePoint]:
    """Coverage at each k: the mean of pass@k over the tasks with n >= k, with a percentile
    bootstrap interval (``bootstrap`` resamples of those tasks, two-sided ``level``).

    Tasks with fewer than k attempts are left out at that k rather than counted as failures, and
    tasks with no attempts are ignored. ``ks`` defaults to ``default_ks(tasks)``; given ks are
    deduplicated and sorted, and a k no task reaches yields no point. ``bootstrap=0`` gives a
    zero-width interval.
    """
    ks = _check_args(tasks, ks, bootstrap=bootstrap, seed=seed, level=level)
    points = []
    for k in ks:
        values = np.array([pass_at_k(t.n, t.c, k) for t in tasks if t.n >= k], dtype=np.float64)
        if values.size:
            points.append(_point(k, values, bootstrap, level, _rngs(seed, k)[0]))
    return points


# --------------------------------------------------------------------------- selection


class Selection(str, Enum):
    """How a user picks one of k attempts without the hidden tests."""

    MAJORITY = "majority"
    """The most common non-empty normalised patch; ties broken uniformly at random."""
    FIRST_P2P = "first_p2p"
    """The first attempt with a non-empty patch that keeps the repository's existing tests green
    (``JudgedAttempt.existing_tests_ok``, run without the hidden test patch), else the first."""
    MAJORITY_P2P = "majority_p2p"
    """Majority among attempts with a non-empty patch that keep the existing tests green, else MAJORITY."""


def selection_success(attempts: Sequence[JudgedAttempt], method: Selection) -> float:
    """The chance that ``method`` picks a solved attempt from ``attempts`` (in the order given).

    Randomness comes only from ties and from disagreeing verdicts: a vote tie is broken uniformly
    at random, and a chosen patch whose attempts disagree on the verdict succeeds with the
    fraction of them solved. This is the readable statement of each rule; ``selection_curve``
    evaluates the same rules vectorised. Raises ValueError for no attempts.
    """
    method = Selection(method)
    if not attempts:
        raise ValueError("no attempts to select from")
    if method is Selection.FIRST_P2P:
        chosen = next((a for a in attempts if a.existing_tests_ok and a.patch_hash), attempts[0])
        return float(chosen.solved)
    voters: Sequence[JudgedAttempt] = ()
    if method is Selection.MAJORITY_P2P:
        voters = [a for a in attempts if a.existing_tests_ok and a.patch_hash]
    if not voters:
        voters = [a for a in attempts if a.patch_hash]
    if not voters:
        # All patches empty: the empty patch is then the only thing to submit.
        voters = list(attempts)
    counts = Counter(a.patch_hash for a in voters)
    top = max(counts.values())
    tied = [h for h, count in counts.items() if count == top]
    return sum(sum(a.solved for a in voters if a.patch_hash == h) / top for h in tied) / len(tied)


def selection_curve(
    tasks: Sequence[TaskAttempts],
    method: Selection,
    ks: Sequence[int] | None = None,
    *,
    draws: int = 200,
    seed: int = 0,
    bootstrap: int = 1000,
    level: float = 0.95,
) -> list[CurvePoint]:
    """Selection success at each k: per task with n >= k, the expected success of ``method`` on
    k of its attempts drawn without replacement in random order; then the mean over tasks with a
    percentile bootstrap interval over tasks, as in ``coverage_curve`` (same ks rules, and the
    same resampled tasks for the same seed, so the two curves are paired).

    How the per-task expectation is computed:

    * FIRST_P2P has a closed form (in a random order the first qualifying attempt is uniform over
      the qualifying ones), so it is exact and ``draws`` is unused.
    * The majority methods are exact when at most ``draws`` subsets contain a solved attempt
      (they are all enumerated, e.g. at k == n), else estimated from ``draws`` subsets.

    Either way the value is ``pass@k * E[success | the subset holds a solved attempt]``: a subset
    without a solved attempt can never succeed, so sampling only the others loses nothing, wastes
    no draws, and keeps every per-task value (hence the mean) at or below coverage exactly rather
    than up to sampling noise.
    """
    method = Selection(method)
    return selection_curves(tasks, [method], ks, draws=draws, seed=seed, bootstrap=bootstrap, level=level)[method]


def selection_curves(
    tasks: Sequence[TaskAttempts],
    methods: Sequence[Selection],
    ks: Sequence[int] | None = None,
    *,
    draws: int = 200,
    seed: int = 0,
    bootstrap: int = 1000,
    level: float = 0.95,
) -> dict[Selection, list[CurvePoint]]:
    """``selection_curve`` for each of ``methods``, the same numbers, computed together: both
    majority methods read the same drawn subsets (each method's curve draws them from a generator
    seeded by (seed, k) alone), so they are drawn once for both rather than once per method; at 250
    attempts per task the drawing was half the cost of the selection curves."""
    methods = [Selection(m) for m in methods]
    ks = _check_args(tasks, ks, bootstrap=bootstrap, seed=seed, level=level)
    draws = operator.index(draws)
    if draws < 1:
        raise ValueError(f"draws must be at least 1, got {draws}")
    points: dict[Selection, list[CurvePoint]] = {m: [] for m in methods}
    # Each task's attempts as arrays once, not once per k: at 250 attempts per task that was three
    # Python passes over every attempt for every k.
    arrays = [_TaskArrays.of(t) for t in tasks]
    for k in ks:
        draw_rng = _rngs(seed, k)[1]
        per_task = [_task_selections(t, methods, k, draws, draw_rng) for t in arrays if t.n >= k]
        for i, method in enumerate(methods):
            values = np.array([v[i] for v in per_task], dtype=np.float64)
            if values.size:
                points[method].append(_point(k, values, bootstrap, level, _rngs(seed, k)[0]))
    return points


@dataclass(frozen=True)
class _TaskArrays:
    """What the selection rules read from one task's attempts, as arrays in attempt order."""

    n: int
    c: int
    solved: np.ndarray
    eligible: np.ndarray
    """A non-empty patch that keeps the existing tests green: FIRST_P2P's and MAJORITY_P2P's voters."""
    nonempty: np.ndarray
    codes: np.ndarray
    """Each attempt's patch as a small integer, equal patches equal."""

    @classmethod
    def of(cls, task: TaskAttempts) -> "_TaskArrays":
        solved = np.array([a.solved for a in task.attempts], dtype=bool)
        return cls(
            n=task.n, c=int(solved.sum()), solved=solved,
            eligible=np.array([a.existing_tests_ok and bool(a.patch_hash) for a in task.attempts], dtype=bool),
            nonempty=np.array([bool(a.patch_hash) for a in task.attempts], dtype=bool),
            codes=_codes(task.attempts),
        )


def _task_selections(task: _TaskArrays, methods: Sequence[Selection], k: int, draws: int,
                     rng: np.random.Generator) -> list[float]:
    """Each method's expected success on ``task`` at ``k``, in the order of ``methods``. The subsets
    the majority methods vote on are drawn once, however many of them are asked for."""
    n, c = task.n, task.c
    if c == 0:
        return [0.0] * len(methods)
    if c == n:
        # Whatever a rule picks is solved.
        return [1.0] * len(methods)
    coverage = pass_at_k(n, c, k)
    solved, eligible = task.solved, task.eligible
    subsets = None
    values = []
    for method in methods:
        if method is Selection.FIRST_P2P:
            values.append(min(coverage, _first_p2p_exact(n, k, solved, eligible)))
            continue
        tiers = [task.nonempty] if method is Selection.MAJORITY else [eligible, task.nonempty]
        # The last tier lets everyone vote: only reached when every drawn patch is empty.
        tiers.append(np.ones(n, dtype=bool))
        if subsets is None:
            subsets = _subsets_with_solved(n, k, solved, draws, rng)
        success = _majority_success(subsets, task.codes, solved, tiers)
        # success.mean() <= 1 and coverage is a float, so the rounded product stays <= coverage.
        values.append(coverage * float(success.mean()))
    return values


def _first_p2p_exact(n: int, k: int, solved: np.ndarray, eligible: np.ndarray) -> float:
    """E[success] of FIRST_P2P over random ordered k-subsets. When the subset holds a qualifying
    attempt, the first one in a random order is uniform over all qualifying attempts of the task;
    when it holds none, the first attempt is uniform over the non-qualifying ones."""
    e = int(eligible.sum())
    q = math.comb(n - e, k) / math.comb(n, k)  # P(no qualifying attempt drawn); exact int ratio
    hit = float(solved[eligible].mean()) if e else 0.0
    miss = float(solved[~eligible].mean()) if e < n else 0.0
    return (1.0 - q) * hit + q * miss


def _subsets_with_solved(n: int, k: int, solved: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Index rows of k-subsets that hold at least one solved attempt, each such subset equally
    likely: all of them when there are at most ``draws``, else ``draws`` sampled. Order within a
    row is not random; only order-free rules use these."""
    won = np.flatnonzero(solved)
    lost = np.flatnonzero(~solved)
    c = won.size
    js = list(range(max(1, k - (n - c)), min(c, k) + 1))  # solved attempts a subset can hold
    weights = [math.comb(c, j) * math.comb(n - c, k - j) for j in js]
    total = sum(weights)
    if total <= draws:
        rows = [
            list(w) + list(u)
            for j in js
            for w in itertools.combinations(won.tolist(), j)
            for u in itertools.combinations(lost.tolist(), k - j)
        ]
        return np.array(rows, dtype=np.intp).reshape(len(rows), k)
    # The count of solved attempts in a uniform subset, conditioned on >= 1, is a truncated
    # hypergeometric; Python int division keeps the huge binomials exact before rounding.
    p = np.array([w / total for w in weights], dtype=np.float64)
    j = rng.choice(np.array(js), size=draws, p=p / p.sum())
    # A random permutation of each group per row, then the first j solved and k - j unsolved.
    pool = np.concatenate(
        [
            won[np.argsort(rng.random((draws, c)), axis=1)],
            lost[np.argsort(rng.random((draws, n - c)), axis=1)],
        ],
        axis=1,
    )
    pos = np.arange(n)
    keep = np.where(pos < c, pos < j[:, None], (pos - c) < (k - j)[:, None])
    return pool[keep].reshape(draws, k)


def _codes(attempts: Sequence[JudgedAttempt]) -> np.ndarray:
    index: dict[str, int] = {}
    return np.array([index.setdefault(a.patch_hash, len(index)) for a in attempts], dtype=np.intp)


def _majority_success(subsets: np.ndarray, codes: np.ndarray, solved: np.ndarray, tiers: list[np.ndarray]) -> np.ndarray:
    """Per row of ``subsets``: the chance the majority vote picks a solved attempt. Voters are the
    first tier with anyone in the row; a tie is an even chance over the tied patches, and a patch
    whose attempts disagree succeeds with the fraction of its voters solved."""
    voter = _voters(subsets, tiers)
    if codes.size and int(codes.max()) + 1 == codes.size:
        # Every patch of the task differs: each voter's patch has one vote, all of them tie, and the
        # chance is the share of voters solved. The same integers divided as in the count below,
        # without its row x patch tables (250 x 200 per task and k at 250 attempts).
        return (voter & solved[subsets]).sum(axis=1) / voter.sum(axis=1)
    return _vote_counts(subsets, codes, solved, voter)


def _voters(subsets: np.ndarray, tiers: list[np.ndarray]) -> np.ndarray:
    """Per row of ``subsets`` and attempt drawn: whether it votes (it is in the row's first tier
    that has anyone in the row)."""
    rows, k = subsets.shape
    voter = np.zeros((rows, k), dtype=bool)
    done = np.zeros(rows, dtype=bool)
    for tier in tiers:
        mask = tier[subsets]
        has = mask.any(axis=1)
        use = has & ~done
        voter[use] = mask[use]
        done |= has
    return voter


def _vote_counts(subsets: np.ndarray, codes: np.ndarray, solved: np.ndarray, voter: np.ndarray) -> np.ndarray:
    """``_majority_success`` by counting each row's votes per patch, for tasks with repeated patches."""
    rows = subsets.shape[0]
    width = int(codes.max()) + 1
    flat = (np.arange(rows)[:, None] * width + codes[subsets]).ravel()
    votes = np.bincount(flat, weights=voter.ravel(), minlength=rows * width).reshape(rows, width)
    wins = np.bincount(flat, weights=(voter & solved[subsets]).ravel(), minlength=rows * width).reshape(rows, width)
    tied = votes == votes.max(axis=1, keepdims=True)  # the max is >= 1: the last tier has everyone
    share = np.where(tied, wins / np.where(votes > 0, votes, 1), 0.0)
    return share.sum(axis=1) / tied.sum(axis=1)


# --------------------------------------------------------------------------- solve rates


@dataclass(frozen=True)
class SolveRates:
    """Per-task solved counts ``solved`` out of ``attempts``, aligned with ``instance_ids``."""

    instance_ids: tuple[str, ...]
    solved: tuple[int, ...]
    attempts: tuple[int, ...]

    @property
    def rates(self) -> tuple[float, ...]:
        """Each task's solve rate c/n."""
        return tuple(c / n for c, n in zip(self.solved, self.attempts))

    def histogram(self, bins: int = 10) -> list[tuple[float, float, int]]:
        """(low, high, count) for ``bins`` equal bins over [0, 1]; each bin holds rates in
        [low, high), the last also 1.0."""
        bins = operator.index(bins)
        if bins < 1:
            raise ValueError(f"bins must be at least 1, got {bins}")
        counts = [0] * bins
        for c, n in zip(self.solved, self.attempts):
            # Integer arithmetic: c/n * bins in floats puts e.g. 29/100 into bin 28 of 100.
            counts[min(c * bins // n, bins - 1)] += 1
        return [(i / bins, (i + 1) / bins, count) for i, count in enumerate(counts)]


def solve_rates(tasks: Sequence[TaskAttempts]) -> SolveRates:
    """Each task's solved count and attempts; tasks with no attempts have no rate and are left out."""
    kept = [t for t in tasks if t.n > 0]
    return SolveRates(
        tuple(t.instance_id for t in kept), tuple(t.c for t in kept), tuple(t.n for t in kept)
    )


def solve_rate_histogram(tasks: Sequence[TaskAttempts], bins: int = 10) -> list[tuple[float, float, int]]:
    """How many tasks have a solve rate c/n in each of ``bins`` equal bins over [0, 1], as
    (bin low, bin high, count); tasks with no attempts are left out."""
    return solve_rates(tasks).histogram(bins)


# --------------------------------------------------------------------------- shared helpers


def _check_args(
    tasks: Sequence[TaskAttempts], ks: Sequence[int] | None, *, bootstrap: int, seed: int, level: float
) -> list[int]:
    if operator.index(bootstrap) < 0:
        raise ValueError(f"bootstrap must be non-negative, got {bootstrap}")
    if operator.index(seed) < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be strictly between 0 and 1, got {level}")
    if ks is None:
        return default_ks(tasks)
    out = sorted({operator.index(k) for k in ks})
    if out and out[0] < 1:
        raise ValueError(f"every k must be at least 1, got {out[0]}")
    return out


def _rngs(seed: int, k: int) -> tuple[np.random.Generator, np.random.Generator]:
    """(bootstrap, draws) generators for one k. Seeding per k keeps a point independent of which
    other ks were asked for, and coverage and selection then resample the same tasks."""
    boot, draw = np.random.SeedSequence([seed, k]).spawn(2)
    return np.random.default_rng(boot), np.random.default_rng(draw)


def _point(k: int, values: np.ndarray, bootstrap: int, level: float, rng: np.random.Generator) -> CurvePoint:
    value = float(values.mean())
    m = values.size
    if bootstrap == 0 or m == 1:
        return CurvePoint(k, value, value, value, m)
    # Resample task indices once for all replicates: one (bootstrap, m) gather instead of a loop.
    means = values[rng.integers(0, m, size=(bootstrap, m))].mean(axis=1)
    alpha = 1.0 - level
    low, high = (float(x) for x in np.quantile(means, [alpha / 2, 1 - alpha / 2]))
    # When every resample has the same mean the quantiles can differ from `value` by a rounding
    # step; reports rely on low <= value <= high.
    return CurvePoint(k, value, min(low, value), max(high, value), m)
