"""Coverage models: the exponentiated power law, the distributional (zero-inflated, scaled) Beta
model, their statuses, bootstrap intervals and the first-half holdout, all checked against
synthetic data with known answers."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
from scipy import integrate, special, stats

from harness.scores.fits import (
    MIN_SOLVED_TASKS,
    MIN_SOLVES,
    FitStatus,
    Holdout,
    PowerLawFit,
    TaskDistribution,
    Variant,
    coverage_points,
    evidence,
    extrapolate_distribution,
    extrapolate_power_law,
    fit_distribution,
    fit_power_law,
    holdout,
)
from harness.scores.judged import JudgedAttempt, TaskAttempts
from harness.scores.coverage import pass_at_k

POWERS = [2**i for i in range(9)]  # 1 .. 256


def exact_power_law(a: float, b: float, ks: Sequence[int]) -> list[float]:
    return [math.exp(a * k**b) for k in ks]


def task(instance_id: str, solved: Sequence[bool]) -> TaskAttempts:
    return TaskAttempts(instance_id, tuple(JudgedAttempt(i, bool(s), "") for i, s in enumerate(solved)))


def drawn_tasks(seed: int, truth: TaskDistribution, tasks: int, n: int | Sequence[int]) -> list[TaskAttempts]:
    """Tasks with p drawn from ``truth`` and independent attempts in random order (so a task's
    first m attempts are a fair sample of its n, as truncation assumes)."""
    rng = np.random.default_rng(seed)
    ns = [n] * tasks if isinstance(n, int) else list(n)
    p = truth.scale * rng.beta(truth.alpha, truth.beta, size=tasks)
    p[rng.random(tasks) < truth.zero] = 0.0
    return [task(f"t{i}", rng.random(ns[i]) < p[i]) for i in range(tasks)]


def beta_tasks(seed: int, alpha: float, beta: float, tasks: int, n: int | Sequence[int]) -> list[TaskAttempts]:
    return drawn_tasks(seed, TaskDistribution(alpha, beta), tasks, n)


def pass_at_k_mean(tasks: Sequence[TaskAttempts], k: int) -> float:
    """The unbiased pass@k estimator (Chen et al. 2021) averaged over tasks."""
    return sum(1 - math.comb(t.n - t.c, k) / math.comb(t.n, k) for t in tasks) / len(tasks)


def demo_shaped() -> list[TaskAttempts]:
    """The bundled demo: 18 tasks, 6 attempts each, one solve in all."""
    return [task("t0", [False, False, True, False, False, False])] + [task(f"t{i}", [False] * 6) for i in range(1, 18)]


# --- power law -------------------------------------------------------------------------------


def test_power_law_recovers_exact_parameters():
    fit = fit_power_law(POWERS, exact_power_law(-1.5, -0.4, POWERS))
    assert fit.status is FitStatus.OK and fit.reason == ""
    assert fit.a == pytest.approx(-1.5, abs=1e-3)
    assert fit.b == pytest.approx(-0.4, abs=1e-3)
    assert fit.exponent == pytest.approx(0.4, abs=1e-3)
    assert fit.rmse < 1e-6
    assert fit.points == len(POWERS)
    assert fit.predict(1024) == pytest.approx(math.exp(-1.5 * 1024**-0.4), abs=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_power_law_recovers_parameters_from_noisy_points(seed):
    rng = np.random.default_rng(seed)
    noisy = np.clip(np.array(exact_power_law(-1.5, -0.4, POWERS)) + rng.normal(0, 0.005, len(POWERS)), 0, 1)
    fit = fit_power_law(POWERS, noisy)
    assert fit.status is FitStatus.OK
    assert fit.a == pytest.approx(-1.5, abs=0.05)
    assert fit.b == pytest.approx(-0.4, abs=0.02)
    # The residual is the noise, not misfit.
    assert 0.001 < fit.rmse < 0.01


def test_power_law_fits_points_with_zero_coverage():
    # Nothing solved at k = 1 and 2: no log exists there, the coverage-scale fit must still work.
    coverage = [0.0, 0.0, 0.01, 0.05, 0.15, 0.3, 0.45, 0.55, 0.62]
    fit = fit_power_law(POWERS, coverage)
    assert fit.status is FitStatus.OK
    assert fit.a <= 0 and fit.b <= 0
    assert fit.rmse < 0.03
    assert fit.predict(1) < 0.01
    assert fit.predict(256) == pytest.approx(0.62, abs=0.05)


def test_power_law_prediction_rises_with_k():
    fit = fit_power_law(POWERS, exact_power_law(-2.0, -0.3, POWERS))
    predictions = [fit.predict(k) for k in [1, 10, 100, 1_000, 10_000]]
    assert predictions == sorted(predictions)
    assert predictions[-1] < 1


def test_power_law_statuses_when_nothing_to_fit():
    for fit, status in [(fit_power_law(POWERS, [0.0] * len(POWERS)), FitStatus.TOO_FEW_SOLVES),
                        (fit_power_law([1, 2], [0.1, 0.2]), FitStatus.TOO_FEW_POINTS),
                        (fit_power_law([], []), FitStatus.TOO_FEW_POINTS)]:
        assert fit.status is status and fit.a is None and fit.b is None and fit.reason
        with pytest.raises(ValueError, match="no prediction"):
            fit.predict(10)


def test_power_law_at_a_bound_predicts_nothing():
    # A flat curve: the law's best fit is b = 0, the bound; it is reported, never extrapolated.
    fit = fit_power_law(POWERS, [0.3] * len(POWERS))
    assert fit.status is FitStatus.AT_BOUND and "b" in fit.reason
    assert fit.a == pytest.approx(math.log(0.3), abs=1e-3)
    with pytest.raises(ValueError, match="no prediction"):
        fit.predict(1000)


def test_power_law_rejects_bad_input():
    with pytest.raises(ValueError):
        fit_power_law([1, 2, 4], [0.1, 0.2])
    with pytest.raises(ValueError):
        fit_power_law([0, 1, 2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError):
        fit_power_law([1, 2, 4], [0.1, 0.2, 1.5])
    with pytest.raises(ValueError):
        PowerLawFit(FitStatus.OK, a=-1.0, b=-0.5, rmse=0.0, points=3).predict(0)


def test_power_law_extrapolation_carries_its_interval():
    tasks = beta_tasks(seed=4, alpha=0.3, beta=2.0, tasks=300, n=16)
    law = extrapolate_power_law(tasks, [1, 2, 4, 8, 16], [1, 16, 256], bootstrap=40, seed=1)
    assert law.fit.status is FitStatus.OK
    assert law.fitted_ks == (1, 2, 4, 8, 16)
    assert [p.k for p in law.curve] == [1, 16, 256]
    for p in law.curve:
        assert p.value == pytest.approx(law.fit.predict(p.k))
        assert p.low <= p.value <= p.high
    assert law.curve[-1].high - law.curve[-1].low > law.curve[0].high - law.curve[0].low
    assert extrapolate_power_law(tasks, [1, 2, 4, 8, 16], [1, 16, 256], bootstrap=40, seed=1) == law


def test_coverage_points_are_the_mean_unbiased_pass_at_k_over_tasks_that_reach_k():
    tasks = [task("a", [False, True, False, False]), task("b", [True, True]), task("empty", [])]
    assert coverage_points(tasks, [1, 2, 4]) == pytest.approx(
        [(pass_at_k(4, 1, 1) + 1.0) / 2, (pass_at_k(4, 1, 2) + 1.0) / 2, pass_at_k(4, 1, 4)])


# --- the distribution and its coverage ---------------------------------------------------------


@pytest.mark.parametrize("k", [1, 3, 10, 100, 1000])
@pytest.mark.parametrize("truth", [TaskDistribution(0.3, 2.0), TaskDistribution(0.2, 1.5, scale=0.6, zero=0.3)],
                         ids=["beta", "zero_scaled"])
def test_coverage_matches_monte_carlo(k, truth):
    rng = np.random.default_rng(0)
    p = truth.scale * rng.beta(truth.alpha, truth.beta, size=1_000_000)
    p[rng.random(p.size) < truth.zero] = 0.0
    monte_carlo = 1 - np.mean((1 - p) ** k)
    assert truth.coverage(k) == pytest.approx(monte_carlo, abs=3e-3)


def test_coverage_shape_plateau_and_exponent():
    fit = TaskDistribution(alpha=0.3, beta=2.0, scale=0.5, zero=0.25)
    assert fit.coverage(0) == 0
    assert fit.coverage(1) == pytest.approx(fit.mean, rel=1e-12)
    assert fit.mean == pytest.approx(0.75 * 0.5 * 0.3 / 2.3)
    ks = [0, 1, 2, 10, 100, 10**4, 10**6]
    values = list(fit.coverage_curve(ks))
    assert all(a < b for a, b in zip(values, values[1:]))
    assert values[-1] < fit.plateau == 0.75
    # The gap to the plateau closes like k^-alpha: the implied power-law exponent.
    gap = [fit.plateau - fit.coverage(k) for k in (10**5, 10**6)]
    assert -math.log(gap[1] / gap[0]) / math.log(10) == pytest.approx(fit.exponent, rel=0.02)
    # With scale 1 coverage is defined for any real k; with scale < 1 only for whole k.
    plain = TaskDistribution(0.3, 2.0)
    assert plain.coverage(1) < plain.coverage(2.5) < plain.coverage(3)
    with pytest.raises(ValueError):
        fit.coverage(2.5)
    with pytest.raises(ValueError):
        fit.coverage(-1)
    with pytest.raises(ValueError):
        TaskDistribution(0.3, 2.0, scale=1.5)


def test_power_law_of_the_plain_beta_tail_has_exponent_alpha():
    # Schaeffer et al.: -log coverage ~ k^-alpha at large k for p ~ Beta(alpha, beta).
    fit = TaskDistribution(alpha=0.4, beta=3.0)
    neg_log = [-math.log(fit.coverage(k)) for k in (10**4, 10**5)]
    assert -math.log10(neg_log[1] / neg_log[0]) == pytest.approx(0.4, rel=0.02)


# --- fitting -----------------------------------------------------------------------------------


def test_fit_recovers_known_beta_parameters_and_chooses_the_plain_beta():
    tasks = beta_tasks(seed=1, alpha=0.3, beta=2.0, tasks=2000, n=20)
    fit = fit_distribution(tasks)
    assert fit.status is FitStatus.OK and fit.variant is Variant.BETA
    assert fit.evidence.tasks == 2000
    assert fit.distribution.alpha == pytest.approx(0.3, rel=0.15)
    assert fit.distribution.beta == pytest.approx(2.0, rel=0.15)
    assert [c.variant for c in fit.candidates] == list(Variant)
    assert fit.aic == min(c.aic for c in fit.candidates)


def test_fit_uses_each_tasks_own_n():
    # Unequal n, as a run stopped early leaves it; n = 0 tasks say nothing and are not counted.
    rng = np.random.default_rng(7)
    ns = rng.integers(5, 40, size=2000).tolist()
    tasks = beta_tasks(seed=2, alpha=0.5, beta=1.5, tasks=2000, n=ns) + [task("empty", [])]
    fit = fit_distribution(tasks)
    assert fit.status is FitStatus.OK and fit.evidence.tasks == 2000
    assert fit.distribution.alpha == pytest.approx(0.5, rel=0.15)
    assert fit.distribution.beta == pytest.approx(1.5, rel=0.15)


def test_log_likelihood_is_the_beta_binomial_one_and_its_maximum():
    tasks = beta_tasks(seed=3, alpha=0.4, beta=3.0, tasks=200, n=[3 + i % 17 for i in range(200)])
    fit = fit_distribution(tasks, [Variant.BETA])
    a, b = fit.distribution.alpha, fit.distribution.beta
    direct = sum(stats.betabinom.logpmf(t.c, t.n, a, b) for t in tasks)
    assert fit.log_likelihood == pytest.approx(direct, rel=1e-9)
    for da, db in [(1.05, 1), (0.95, 1), (1, 1.05), (1, 0.95)]:
        other = sum(stats.betabinom.logpmf(t.c, t.n, a * da, b * db) for t in tasks)
        assert other < fit.log_likelihood


def test_log_likelihood_of_the_zero_inflated_scaled_variant_is_the_integral():
    truth = TaskDistribution(0.3, 2.0, scale=0.6, zero=0.3)
    tasks = drawn_tasks(seed=5, truth=truth, tasks=60, n=[4 + i % 9 for i in range(60)])
    fit = fit_distribution(tasks, [Variant.ZERO_SCALED_BETA])
    d = fit.distribution
    assert fit.variant is Variant.ZERO_SCALED_BETA and 0 < d.zero < 1 and 0 < d.scale < 1

    def log_p(t: TaskAttempts, d: TaskDistribution) -> float:
        # Plain floats, not scipy.stats: quad calls the integrand hundreds of times per task.
        norm = math.comb(t.n, t.c) / math.exp(special.betaln(d.alpha, d.beta))

        def density(q: float) -> float:
            p = d.scale * q
            return norm * p**t.c * (1 - p) ** (t.n - t.c) * q ** (d.alpha - 1) * (1 - q) ** (d.beta - 1)

        inner, _ = integrate.quad(density, 0, 1, points=[1e-6, 1e-3, 0.1], limit=200, epsabs=1e-13)
        return math.log(d.zero * (t.c == 0) + (1 - d.zero) * inner)

    assert fit.log_likelihood == pytest.approx(sum(log_p(t, d) for t in tasks), rel=1e-6)
    nudged = TaskDistribution(d.alpha * 1.05, d.beta, d.scale, d.zero * 0.95)
    assert sum(log_p(t, nudged) for t in tasks) < fit.log_likelihood


def test_fit_recovers_a_plateau_from_data_with_a_point_mass_at_zero():
    truth = TaskDistribution(alpha=0.8, beta=3.0, zero=0.4)
    tasks = drawn_tasks(seed=0, truth=truth, tasks=400, n=40)
    result = extrapolate_distribution(tasks, [40, 10**5], bootstrap=40, seed=0)
    fit = result.fit
    assert fit.status is FitStatus.OK
    assert fit.variant.zero
    assert fit.distribution.plateau == pytest.approx(truth.plateau, abs=0.05)
    # A plateau, not a curve creeping on towards 1. The interval stays wide above it: in some
    # resamples a Beta piled up near 0 explains the never-solved tasks as well as a point mass.
    far = result.curve[-1]
    assert far.value == pytest.approx(truth.coverage(10**5), abs=0.05)
    assert far.low <= truth.coverage(10**5) <= far.high


def test_intervals_cover_the_true_coverage_at_large_k_in_most_repetitions():
    # A heavy left tail and a point mass at 0: 200 tasks, 20 attempts each, predicted at 10x that.
    truth = TaskDistribution(alpha=0.5, beta=3.0, zero=0.3)
    k_far = 200
    hits = 0
    repetitions = 8
    for seed in range(repetitions):
        result = extrapolate_distribution(drawn_tasks(seed, truth, 200, 20), [k_far], bootstrap=30, seed=seed)
        assert result.fit.status is FitStatus.OK
        far = result.curve[0]
        hits += far.low <= truth.coverage(k_far) <= far.high
    assert hits >= repetitions - 2


# --- statuses: no prediction where the data cannot say -----------------------------------------


def test_demo_shaped_data_gives_no_prediction():
    tasks = demo_shaped()
    result = extrapolate_distribution(tasks, [1, 6, 100], bootstrap=20)
    assert result.fit.status is FitStatus.TOO_FEW_SOLVES
    assert "1 solve in 108 attempts" in result.fit.reason
    assert result.curve == () and result.exponent_low is None
    assert result.fit.distribution is not None  # the parameters are still reported
    with pytest.raises(ValueError, match="no prediction"):
        result.fit.predict(100)
    law = extrapolate_power_law(tasks, [1, 2, 4, 6], [1, 6, 100], bootstrap=20)
    assert law.fit.status is not FitStatus.OK and law.curve == ()


def test_evidence_thresholds():
    just = [task(f"s{i}", [True, True, False]) for i in range(MIN_SOLVED_TASKS)] + [task("u", [False] * 3)]
    assert evidence(just).solves == 2 * MIN_SOLVED_TASKS >= MIN_SOLVES and evidence(just).enough_solves
    short = just[1:]
    assert not evidence(short).enough_solves
    assert fit_distribution(short).status is FitStatus.TOO_FEW_SOLVES


def test_fit_with_every_task_alike_sits_at_a_bound():
    # Every task 2 of 10: less spread than binomial noise alone, so the MLE is a point mass
    # (alpha, beta -> infinity together) and the fit ends on the bound.
    fit = fit_distribution([task(f"t{i}", [True, True] + [False] * 8) for i in range(30)])
    assert fit.status is FitStatus.AT_BOUND and "beta" in fit.at_bound and "beta" in fit.reason
    assert extrapolate_distribution([task(f"t{i}", [True, True] + [False] * 8) for i in range(30)], [100]).curve == ()


def test_fit_statuses_at_the_edges():
    assert fit_distribution([]).status is FitStatus.NO_DATA
    assert fit_distribution([task("a", []), task("b", [])]).status is FitStatus.NO_DATA
    ones = [task(f"t{i}", [i % 2 == 0]) for i in range(40)]
    assert fit_distribution(ones).status is FitStatus.TOO_FEW_ATTEMPTS
    nothing = fit_distribution([task(f"t{i}", [False] * 10) for i in range(50)])
    assert nothing.status is FitStatus.TOO_FEW_SOLVES and nothing.distribution.alpha < 1e-3
    everything = fit_distribution([task(f"t{i}", [True] * 10) for i in range(50)])
    assert everything.status is FitStatus.AT_BOUND and everything.distribution.coverage(1) > 0.999


# --- bootstrap intervals -----------------------------------------------------------------------


def test_intervals_contain_estimate_and_truth_and_widen_with_k():
    alpha, beta = 0.3, 2.0
    tasks = beta_tasks(seed=4, alpha=alpha, beta=beta, tasks=300, n=20)
    ks = [1, 10, 100, 1000]
    result = extrapolate_distribution(tasks, ks, bootstrap=40, seed=0)
    truth = TaskDistribution(alpha, beta)
    assert [p.k for p in result.curve] == ks
    for p in result.curve:
        assert p.value == pytest.approx(result.fit.predict(p.k), abs=1e-9)
        assert p.low <= p.value <= p.high and p.low < p.high
        assert p.low <= truth.coverage(p.k) <= p.high
    widths = [p.high - p.low for p in result.curve]
    assert widths[-1] > widths[0]
    assert result.exponent_low <= result.fit.distribution.exponent <= result.exponent_high
    assert result.exponent_low <= alpha <= result.exponent_high


def test_intervals_are_reproducible_and_narrow_with_level():
    tasks = beta_tasks(seed=5, alpha=0.5, beta=1.0, tasks=100, n=8)
    first = extrapolate_distribution(tasks, [1, 16], bootstrap=20, seed=3)
    assert extrapolate_distribution(tasks, [1, 16], bootstrap=20, seed=3) == first
    narrow = extrapolate_distribution(tasks, [1, 16], bootstrap=20, seed=3, level=0.5)
    for wide, tight in zip(first.curve, narrow.curve):
        assert wide.low <= tight.low <= tight.high <= wide.high


def test_interval_arguments_are_checked():
    tasks = beta_tasks(seed=5, alpha=0.5, beta=1.0, tasks=50, n=8)
    with pytest.raises(ValueError):
        extrapolate_distribution(tasks, [1], bootstrap=0)
    with pytest.raises(ValueError):
        extrapolate_distribution(tasks, [1], level=1.0)
    with pytest.raises(ValueError):
        extrapolate_power_law(tasks, [1, 2, 4], [1], bootstrap=0)


# --- holdout -----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_holdout_predicts_the_second_half(seed):
    tasks = beta_tasks(seed=seed, alpha=0.3, beta=2.0, tasks=300, n=32)
    result = holdout(tasks, bootstrap=20, seed=seed)
    assert result is not None
    assert (result.k_fit_max, result.k_target) == (16, 32)
    assert result.measured == pytest.approx(pass_at_k_mean(tasks, 32))
    assert result.distribution_status is FitStatus.OK and result.power_law_status is FitStatus.OK
    assert result.distribution is not None and result.power_law is not None
    assert result.distribution.k == 32
    assert result.distribution_error == pytest.approx(result.distribution.value - result.measured)
    assert abs(result.distribution_error) < 0.04
    assert abs(result.power_law_error) < 0.1


def test_holdout_fits_only_the_first_half():
    # Every task solved only after attempt 8: the first half sees nothing solved, so neither model
    # may predict at K = 16, even though the measured coverage there is 1. Peeking would show.
    tasks = [task(f"t{i}", [False] * 8 + [True] * 8) for i in range(20)]
    result = holdout(tasks, bootstrap=10)
    assert result is not None
    assert (result.k_fit_max, result.k_target) == (8, 16)
    assert result.measured == 1.0
    assert result.power_law is None and result.power_law_error is None
    assert result.power_law_status is FitStatus.TOO_FEW_SOLVES
    assert result.distribution is None and result.distribution_error is None
    assert result.distribution_status is FitStatus.TOO_FEW_SOLVES and result.distribution_reason


def test_holdout_uses_the_smallest_n():
    tasks = beta_tasks(seed=9, alpha=0.5, beta=1.5, tasks=100, n=[10 + i % 7 for i in range(100)])
    result = holdout(tasks, bootstrap=10)
    assert isinstance(result, Holdout)
    assert (result.k_fit_max, result.k_target) == (5, 10)
    assert result.power_law is not None  # ks 1, 2, 4, 5


def test_holdout_none_when_too_few_attempts():
    assert holdout([]) is None
    tasks = beta_tasks(seed=0, alpha=0.5, beta=1.5, tasks=50, n=8) + [task("short", [True, False, True])]
    assert holdout(tasks) is None


def test_holdout_k4_leaves_power_law_unfitted():
    # K = 4: the first half is k = 1, 2, two points, too few for the power law.
    result = holdout(beta_tasks(seed=0, alpha=0.5, beta=1.5, tasks=50, n=4), bootstrap=10)
    assert result is not None
    assert (result.k_fit_max, result.k_target) == (2, 4)
    assert result.power_law is None and result.power_law_status is FitStatus.TOO_FEW_POINTS
    assert result.distribution_status is FitStatus.OK and result.distribution is not None


# --- the report's fits section -----------------------------------------------------------------


def test_report_fits_section_draws_no_curve_for_demo_shaped_data():
    from harness.scores.report import _fits
    from harness.scores.report_html import _fits_section

    fits = _fits(demo_shaped(), 6, 0, bootstrap=10)
    dist, law = fits["distribution"], fits["power_law"]
    assert dist["status"] == "too_few_solves" and dist["curve"] is None
    assert dist["variant"] == "beta" and dist["parameters"]["beta"] > 1e4 and dist["at_bound"] == ["beta"]
    assert dist["log_likelihood"] < 0 and dist["exponent"] == dist["parameters"]["alpha"]
    assert dist["evidence"] == {"tasks": 18, "attempts": 108, "solved_tasks": 1, "solves": 1}
    assert law["status"] == "too_few_solves" and law["curve"] is None and law["fitted_to_k"] == 6
    hold = fits["holdout"]
    assert hold["distribution"]["value"] is None and hold["power_law"]["value"] is None
    page = _fits_section([{"run": "demo", "fits": fits}])
    assert page.count("no prediction: fewer than 5 solved tasks") == 4  # both fits and both holdout predictions


def test_report_fits_section_carries_curves_with_intervals_when_ok():
    from harness.scores.report import _fits
    from harness.scores.report_html import _fits_section

    fits = _fits(beta_tasks(seed=4, alpha=0.3, beta=2.0, tasks=150, n=16), 16, 0, bootstrap=10)
    for key in ("distribution", "power_law"):
        assert fits[key]["status"] == "ok"
        assert [p["k"] for p in fits[key]["curve"]] == [1, 2, 4, 8, 16, 32, 64, 128, 256]
        assert all(p["low"] <= p["value"] <= p["high"] for p in fits[key]["curve"])
    assert fits["distribution"]["selection"] == "AIC" and len(fits["distribution"]["candidates"]) == 4
    assert fits["holdout"]["distribution"]["status"] == "ok"
    assert "no prediction" not in _fits_section([{"run": "r", "fits": fits}])


def test_direct_tnc_finds_what_scipy_minimize_finds_to_the_bit():
    # fits._tnc calls scipy's TNC routine without minimize's wrappers (the report's bootstrap makes
    # ~800 fits); it must visit the same points and stop at the same optimum, on ordinary data and
    # on data where every task has one rate (the scaled Beta's flat ridge, a fit that runs to the
    # evaluation cap), for every variant, start and a resampled weighting.
    from scipy import optimize

    from harness.scores import fits

    ridge = [task(f"t{i}", np.random.default_rng(i).random(25) < 0.3) for i in range(60)]
    spread = drawn_tasks(seed=2, truth=TaskDistribution(0.4, 2.0, scale=0.7, zero=0.2), tasks=80, n=12)
    capped = 0
    for tasks in (ridge, spread):
        counts = fits._counts(tasks)
        rng = np.random.default_rng(0)
        resampled = np.bincount(counts.group[rng.integers(0, counts.group.size, size=counts.group.size)],
                                minlength=counts.weight.size).astype(float)
        for w in (counts.weight, resampled):
            for variant in Variant:
                for start in fits._starts(counts, variant):
                    def f(x):
                        return fits._neg_log_lik(x, counts, w, variant)

                    public = optimize.minimize(f, start, jac=True, method="TNC",
                                               bounds=[(-fits._THETA_BOUND, fits._THETA_BOUND)] * start.size,
                                               options={"maxfun": fits._TNC_MAXFUN})
                    direct = fits._tnc(f, start)
                    assert direct.tobytes() == np.asarray(public.x, dtype=float).tobytes(), (variant, direct, public.x)
                    capped += public.nfev >= fits._TNC_MAXFUN
    assert capped, "no fit ran to the evaluation cap: the flat-ridge case is not exercised"
