"""Scoring: pass@k against its closed form, coverage over tasks of unequal n, selection rules
against brute-force enumeration, and solve-rate histograms. Pure: no files, no Docker."""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from fractions import Fraction

import pytest

from harness.scores.judged import JudgedAttempt, TaskAttempts
from harness.scores.coverage import (
    CurvePoint,
    Selection,
    SolveRates,
    coverage_curve,
    default_ks,
    max_common_k,
    pass_at_k,
    selection_curve,
    selection_curves,
    selection_success,
    solve_rate_histogram,
    solve_rates,
)


def make_task(iid: str, spec: list[tuple[bool, str, bool]]) -> TaskAttempts:
    """A task from (solved, patch_hash, existing_tests_ok) per attempt, in sample order."""
    return TaskAttempts(iid, tuple(JudgedAttempt(i, s, h, p) for i, (s, h, p) in enumerate(spec)))


def counted(iid: str, n: int, c: int) -> TaskAttempts:
    """A task with n attempts, the first c solved, each with its own patch."""
    return make_task(iid, [(i < c, f"h{i}", True) for i in range(n)])


def random_task(rng: random.Random, iid: str, max_n: int = 9) -> TaskAttempts:
    n = rng.randint(1, max_n)
    hashes = ["", "a", "b", "c", "d"]
    spec = []
    for _ in range(n):
        h = rng.choice(hashes)
        spec.append((rng.random() < 0.4, h, rng.random() < 0.5))
    return make_task(iid, spec)


# Brute-force references, written independently of harness.scores.coverage.


def ref_majority(attempts, p2p: bool) -> float:
    voters = [a for a in attempts if a.existing_tests_ok and a.patch_hash] if p2p else []
    voters = voters or [a for a in attempts if a.patch_hash] or list(attempts)
    counts = Counter(a.patch_hash for a in voters)
    best = max(counts.values())
    tied = [h for h in counts if counts[h] == best]
    return sum(Fraction(sum(a.solved for a in voters if a.patch_hash == h), best) for h in tied) / len(tied)


def ref_first_p2p(ordered) -> float:
    for a in ordered:
        if a.existing_tests_ok and a.patch_hash:
            return float(a.solved)
    return float(ordered[0].solved)


def ref_expected(task: TaskAttempts, method: Selection, k: int) -> float:
    """Mean success over every ordered k-subset (order matters only for FIRST_P2P)."""
    if method is Selection.FIRST_P2P:
        outcomes = [ref_first_p2p(p) for p in itertools.permutations(task.attempts, k)]
    else:
        p2p = method is Selection.MAJORITY_P2P
        outcomes = [ref_majority(s, p2p) for s in itertools.combinations(task.attempts, k)]
    return float(sum(Fraction(o) for o in outcomes) / len(outcomes))


# --------------------------------------------------------------------------- pass@k


def test_pass_at_k_matches_closed_form_on_a_grid():
    for n in range(1, 13):
        for c in range(n + 1):
            for k in range(1, n + 1):
                exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
                assert pass_at_k(n, c, k) == pytest.approx(float(exact), abs=1e-12), (n, c, k)


@pytest.mark.parametrize("n", [1, 5, 40])
def test_pass_at_k_edges(n):
    assert pass_at_k(n, 0, 1) == 0.0
    assert pass_at_k(n, 0, n) == 0.0
    assert pass_at_k(n, n, 1) == 1.0
    assert pass_at_k(n, n, n) == 1.0
    assert pass_at_k(n, 1, n) == 1.0  # k == n: any solved attempt is always drawn
    for c in range(n + 1):
        assert pass_at_k(n, c, 1) == pytest.approx(c / n)


@pytest.mark.parametrize("n,c,k", [(250, 3, 100), (2000, 5, 1000), (5000, 1, 2500), (1200, 600, 300)])
def test_pass_at_k_large_n_without_overflow(n, c, k):
    exact = 1 - math.comb(n - c, k) / math.comb(n, k)  # Python int division: exact, then rounded
    got = pass_at_k(n, c, k)
    assert math.isfinite(got)
    assert got == pytest.approx(exact, rel=1e-9)


@pytest.mark.parametrize(
    "n,c,k",
    [(3, 1, 4), (3, 1, 0), (3, 1, -1), (3, 4, 1), (-1, 0, 1), (3, -1, 1), (0, 0, 1)],
)
def test_pass_at_k_rejects_bad_arguments(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_pass_at_k_rejects_non_integers():
    with pytest.raises(TypeError):
        pass_at_k(4.0, 1, 1)


# --------------------------------------------------------------------------- coverage


def test_coverage_curve_with_unequal_n():
    a, b = counted("A", 4, 1), counted("B", 2, 2)
    points = coverage_curve([a, b], bootstrap=500, seed=3)
    assert [p.k for p in points] == [1, 2, 4]
    by_k = {p.k: p for p in points}
    assert by_k[1].value == pytest.approx((0.25 + 1.0) / 2)
    assert by_k[1].tasks == 2
    assert by_k[2].value == pytest.approx((0.5 + 1.0) / 2)  # A: 1 - C(3,2)/C(4,2) = 0.5
    # Only A reaches k=4; B is left out, not counted as a failure.
    assert by_k[4].tasks == 1
    assert by_k[4].value == pytest.approx(1.0)
    for p in points:
        assert isinstance(p, CurvePoint)
        assert 0.0 <= p.low <= p.value <= p.high <= 1.0


def test_coverage_bootstrap_is_seeded():
    rng = random.Random(7)
    tasks = [counted(f"t{i}", rng.randint(3, 10), rng.randint(0, 3)) for i in range(30)]
    first = coverage_curve(tasks, bootstrap=400, seed=11)
    assert coverage_curve(tasks, bootstrap=400, seed=11) == first
    other = coverage_curve(tasks, bootstrap=400, seed=12)
    assert [p.value for p in other] == [p.value for p in first]  # the estimate has no randomness
    assert [(p.low, p.high) for p in other] != [(p.low, p.high) for p in first]
    for p in first:
        assert p.low <= p.value <= p.high
    assert first[0].tasks == 30
    assert first[0].high - first[0].low < 0.4  # 30 tasks at k=1: an informative interval, not [0, 1]


def test_coverage_interval_widens_with_level_and_vanishes_without_bootstrap():
    rng = random.Random(1)
    tasks = [counted(f"t{i}", 8, rng.randint(0, 4)) for i in range(40)]
    narrow = coverage_curve(tasks, [1], level=0.5)[0]
    wide = coverage_curve(tasks, [1], level=0.99)[0]
    assert wide.high - wide.low > narrow.high - narrow.low
    flat = coverage_curve(tasks, [1], bootstrap=0)[0]
    assert flat.low == flat.value == flat.high


def test_coverage_ks_ignore_empty_tasks_and_unreached_k():
    tasks = [counted("A", 3, 1), TaskAttempts("empty", ())]
    points = coverage_curve(tasks, [5, 1, 3, 1])
    assert [p.k for p in points] == [1, 3]  # sorted, deduplicated, k=5 reached by none
    assert all(p.tasks == 1 for p in points)
    assert coverage_curve([TaskAttempts("empty", ())]) == []


def test_point_independent_of_other_ks():
    tasks = [counted(f"t{i}", 6, i % 4) for i in range(12)]
    alone = coverage_curve(tasks, [4], seed=5)[0]
    among = {p.k: p for p in coverage_curve(tasks, [1, 2, 4, 6], seed=5)}[4]
    assert alone == among


def test_default_ks():
    assert default_ks([counted("a", 10, 1), counted("b", 3, 0)]) == [1, 2, 4, 8, 10]
    assert default_ks([counted("a", 8, 1)]) == [1, 2, 4, 8]
    assert default_ks([counted("a", 1, 1)]) == [1]
    assert default_ks([]) == []


@pytest.mark.parametrize(
    "kwargs", [{"level": 1.0}, {"level": 0.0}, {"bootstrap": -1}, {"seed": -1}, {"ks": [0, 1]}]
)
def test_coverage_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        coverage_curve([counted("a", 3, 1)], **kwargs)


def test_max_common_k():
    assert max_common_k([]) == 0
    assert max_common_k([TaskAttempts("e", ())]) == 0
    assert max_common_k([counted("a", 5, 1), counted("b", 3, 0), TaskAttempts("e", ())]) == 3
    assert max_common_k([counted("a", 7, 7)]) == 7


# --------------------------------------------------------------------------- selection rules


@pytest.mark.parametrize("method", list(Selection))
def test_one_shared_solved_patch_always_selected(method):
    task = make_task("t", [(True, "fix", True), (True, "fix", False), (True, "fix", True)])
    for point in selection_curve([task], method):
        assert point.value == 1.0
    # With an unsolved empty attempt added, the rules run for real and still match coverage.
    task = make_task("t", [(True, "fix", True), (True, "fix", True), (False, "", True), (True, "fix", True)])
    cover = {p.k: p.value for p in coverage_curve([task])}
    for point in selection_curve([task], method):
        assert point.value == pytest.approx(cover[point.k]), point


def test_majority_prefers_repeated_wrong_patch():
    task = make_task("t", [(False, "wrong", False), (True, "right", True), (False, "wrong", False)])
    assert selection_success(task.attempts, Selection.MAJORITY) == 0.0
    assert selection_curve([task], Selection.MAJORITY, [3])[0].value == 0.0
    # P2P filters out the wrong patch, so majority_p2p and first_p2p find the right one.
    assert selection_curve([task], Selection.MAJORITY_P2P, [3])[0].value == 1.0
    assert selection_curve([task], Selection.FIRST_P2P, [3])[0].value == 1.0


def test_first_p2p_skips_attempts_failing_p2p_and_empty_patches():
    attempts = make_task(
        "t", [(False, "x", False), (False, "", True), (True, "y", True), (False, "z", True)]
    ).attempts
    assert selection_success(attempts, Selection.FIRST_P2P) == 1.0
    assert selection_success(attempts[::-1], Selection.FIRST_P2P) == 0.0  # "z" now comes first
    # Nothing qualifies: the first attempt is submitted.
    none_ok = make_task("t", [(True, "x", False), (False, "y", False)]).attempts
    assert selection_success(none_ok, Selection.FIRST_P2P) == 1.0
    assert selection_success(none_ok[::-1], Selection.FIRST_P2P) == 0.0


def test_empty_patches_are_not_voted():
    task = make_task("t", [(False, "", False), (False, "", False), (False, "", False), (True, "a", False)])
    assert selection_success(task.attempts, Selection.MAJORITY) == 1.0
    assert selection_curve([task], Selection.MAJORITY, [4])[0].value == 1.0
    # Only when every patch is empty does the empty patch win, with its own verdicts.
    all_empty = make_task("t", [(False, "", False), (True, "", False)])
    assert selection_success(all_empty.attempts, Selection.MAJORITY) == 0.5


def test_ties_and_disagreeing_verdicts_are_probabilities():
    tie = make_task("t", [(True, "a", True), (False, "b", True)])
    assert selection_success(tie.attempts, Selection.MAJORITY) == 0.5
    assert selection_curve([tie], Selection.MAJORITY, [2])[0].value == 0.5
    flaky = make_task("t", [(True, "a", True), (False, "a", True), (False, "b", True)])
    assert selection_success(flaky.attempts, Selection.MAJORITY) == 0.5


def test_majority_p2p_falls_back_to_plain_majority():
    task = make_task("t", [(True, "a", False), (True, "a", False), (False, "b", False)])
    assert selection_success(task.attempts, Selection.MAJORITY_P2P) == 1.0
    assert selection_curve([task], "majority_p2p", [3])[0].value == 1.0


def test_selection_success_requires_attempts():
    with pytest.raises(ValueError):
        selection_success((), Selection.MAJORITY)


# --------------------------------------------------------------------------- selection curves


@pytest.mark.parametrize("method", list(Selection))
def test_selection_curve_matches_brute_force(method):
    rng = random.Random(2024)
    tasks = [random_task(rng, f"t{i}", max_n=7) for i in range(25)]
    # draws above every count of subsets here: the majority rules are enumerated, so exact.
    for point in selection_curve(tasks, method, [1, 2, 3, 5, 7], draws=10_000, bootstrap=0):
        refs = [ref_expected(t, method, point.k) for t in tasks if t.n >= point.k]
        assert point.tasks == len(refs)
        assert point.value == pytest.approx(sum(refs) / len(refs), abs=1e-12), point.k


@pytest.mark.parametrize("method", [Selection.MAJORITY, Selection.MAJORITY_P2P])
def test_sampled_majority_is_close_to_exact(method):
    task = make_task(
        "t",
        [(False, "w", True)] * 4 + [(True, "r", True)] * 3 + [(False, "", False)] * 3
        + [(True, "r2", False), (False, "q", True), (False, "w", False), (True, "r", False)],
    )
    k = 7  # C(14, 7) = 3432 subsets, more than the draws below: sampled
    exact = ref_expected(task, method, k)
    sampled = selection_curve([task], method, [k], draws=3000, seed=9)[0].value
    assert sampled == pytest.approx(exact, abs=0.03)
    assert sampled != exact  # really the sampling path, not enumeration


@pytest.mark.parametrize("seed", range(6))
def test_selection_never_exceeds_coverage(seed):
    rng = random.Random(seed)
    tasks = [random_task(rng, f"t{i}", max_n=16) for i in range(40)]
    cover = {p.k: p for p in coverage_curve(tasks, seed=seed)}
    for method in Selection:
        for point in selection_curve(tasks, method, draws=5, seed=seed):
            assert point.tasks == cover[point.k].tasks
            assert point.value <= cover[point.k].value, (method, point)
        # Per task as well, where sampling noise would show up first.
        for task in tasks:
            task_cover = {p.k: p.value for p in coverage_curve([task], bootstrap=0)}
            for point in selection_curve([task], method, draws=3, seed=seed, bootstrap=0):
                assert point.value <= task_cover[point.k], (method, task, point)


def test_selection_curve_is_seeded_and_paired_with_coverage():
    rng = random.Random(5)
    tasks = [random_task(rng, f"t{i}", max_n=14) for i in range(30)]
    first = selection_curve(tasks, Selection.MAJORITY, draws=20, seed=4)
    assert selection_curve(tasks, Selection.MAJORITY, draws=20, seed=4) == first
    assert selection_curve(tasks, Selection.MAJORITY, draws=20, seed=8) != first
    for p in first:
        assert p.low <= p.value <= p.high


def test_selection_curves_together_equal_each_curve_alone():
    # The report asks for every method at once, and the majority methods then share their drawn
    # subsets: each curve must still be exactly the one its own call gives, in whatever order asked.
    rng = random.Random(11)
    tasks = [random_task(rng, f"t{i}", max_n=14) for i in range(30)]
    alone = {m: selection_curve(tasks, m, draws=7, seed=3, bootstrap=50) for m in Selection}
    for methods in (list(Selection), list(Selection)[::-1], [Selection.MAJORITY_P2P, Selection.MAJORITY]):
        assert selection_curves(tasks, methods, draws=7, seed=3, bootstrap=50) == {m: alone[m] for m in methods}


def test_distinct_patches_shortcut_equals_counting_votes():
    # Where every patch of a task differs, the majority chance is the share of voters solved; it
    # must equal, to the bit, what counting votes per patch gives.
    import numpy as np

    from harness.scores.coverage import _majority_success, _vote_counts, _voters

    rng = np.random.default_rng(5)
    for _ in range(200):
        n = int(rng.integers(2, 40))
        k = int(rng.integers(1, n + 1))
        codes = np.arange(n)
        solved = rng.random(n) < rng.random()
        tiers = [rng.random(n) < 0.5, rng.random(n) < 0.8, np.ones(n, dtype=bool)]
        subsets = np.array([rng.permutation(n)[:k] for _ in range(int(rng.integers(1, 30)))])
        fast = _majority_success(subsets, codes, solved, tiers)
        counted_votes = _vote_counts(subsets, codes, solved, _voters(subsets, tiers))
        assert fast.tobytes() == counted_votes.tobytes()


def test_selection_curve_rejects_bad_arguments():
    task = counted("a", 3, 1)
    with pytest.raises(ValueError):
        selection_curve([task], Selection.MAJORITY, draws=0)
    with pytest.raises(ValueError):
        selection_curve([task], "best_of_hidden_tests")


# --------------------------------------------------------------------------- solve rates


def test_solve_rates_and_histogram():
    tasks = [counted("a", 4, 1), counted("b", 2, 2), counted("c", 10, 0), TaskAttempts("e", ())]
    rates = solve_rates(tasks)
    assert rates == SolveRates(("a", "b", "c"), (1, 2, 0), (4, 2, 10))
    assert rates.rates == (0.25, 1.0, 0.0)
    hist = solve_rate_histogram(tasks, bins=4)
    assert hist == [(0.0, 0.25, 1), (0.25, 0.5, 1), (0.5, 0.75, 0), (0.75, 1.0, 1)]
    assert sum(count for _, _, count in solve_rate_histogram(tasks)) == 3


def test_histogram_bins_by_exact_fraction():
    # 29/100 * 100 is 28.999999999999996 in floats; the bin must still be [0.29, 0.30).
    hist = solve_rate_histogram([counted("t", 100, 29)], bins=100)
    assert [i for i, (_, _, count) in enumerate(hist) if count] == [29]
    with pytest.raises(ValueError):
        solve_rate_histogram([counted("t", 3, 1)], bins=0)
