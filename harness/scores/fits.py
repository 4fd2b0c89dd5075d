"""Models of coverage(k), fitted to measured attempts, to extrapolate beyond the largest k sampled.

Two models, side by side:

* The exponentiated power law of Brown et al. 2024 ("Large Language Monkeys"):
  ``coverage(k) ≈ exp(a · k^b)``, i.e. ``−log coverage ≈ −a · k^b``. It is a curve fitted to the
  coverage curve itself: it knows nothing about tasks, only about points (k, coverage).
* The distributional model of Schaeffer et al. 2025 ("How Do Large Language Monkeys Get Their
  Power (Laws)?"): each task has its own single-attempt success probability ``p``, drawn from a
  distribution over tasks, and its ``c`` successes out of ``n`` attempts are binomial given ``p``.
  Coverage follows exactly, ``coverage(k) = 1 − E[(1 − p)^k]``. The distribution is

      p = 0                with probability π0   (tasks the model never solves)
      p = s · q, q ~ Beta(α, β)  otherwise        (s in (0, 1]: an upper bound on p)

  fitted by the beta-binomial likelihood of the tasks' (n, c). Four variants: plain Beta (s = 1,
  π0 = 0), scaled Beta (π0 = 0), zero-inflated Beta (s = 1) and zero-inflated scaled Beta; one is
  chosen by AIC. Coverage then plateaus at ``1 − π0``, and the gap to the plateau closes like
  ``k^−α``: a Beta density ~ p^(α−1) near 0 is the paper's power-law left tail. With π0 = 0 that
  makes ``−log coverage`` (≈ 1 − coverage at large k) a power law in k with exponent α, the
  paper's relation (s only rescales k). So α is the implied power-law exponent, to compare with
  ``−b`` of the curve fit.

Neither model draws a number it cannot know. Every fit carries a ``FitStatus``; a prediction
(a curve, with its percentile bootstrap interval over tasks) exists only when the status is ``ok``:
not when the fit sits at a bound of its parameter space (the likelihood wanted to go further, so
the bound, not the data, set the answer), and not when it rests on fewer than a handful of solves.

``holdout`` fits both on the first half of the k range and reports how well each predicts the
measured coverage at the largest k every task reaches. Everything here is pure and seeded: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from enum import Enum
from typing import Any

import numpy as np
from scipy import optimize, special

from harness.scores.judged import TaskAttempts
from harness.scores.coverage import ks_up_to, pass_at_k


class FitStatus(str, Enum):
    """Whether a fit may draw a prediction. Only ``OK`` does."""

    OK = "ok"
    NO_DATA = "no_data"
    """No task has a judged attempt."""
    TOO_FEW_POINTS = "too_few_points"
    """Power law: fewer than 3 (k, coverage) points; two parameters through two points say nothing."""
    TOO_FEW_ATTEMPTS = "too_few_attempts"
    """No task has 2 attempts: one attempt per task shows the mean of p, never how it spreads."""
    TOO_FEW_SOLVES = "too_few_solves"
    """Fewer than ``MIN_SOLVED_TASKS`` tasks solved at least once, or fewer than ``MIN_SOLVES``
    solved attempts in all (see there)."""
    AT_BOUND = "at_bound"
    """A parameter sits at a bound of its range: the bound, not the data, fixed the fit."""
    FAILED = "failed"
    """The optimiser gave no finite answer."""


# A fit "rests on fewer than a handful of solves" below either threshold. The left tail that sets
# every extrapolation is seen only through the tasks solved rarely; with fewer than 5 solved tasks
# there is no spread of p to speak of, and with fewer than 10 solved attempts one lucky attempt
# more or less moves the whole curve (the demo: 1 solve in 108 attempts over 18 tasks).
MIN_SOLVED_TASKS = 5
MIN_SOLVES = 10

# Within this distance of a bound (on the optimiser's log/logit scale) a parameter is at it. The
# bounded optimiser lands on an active bound exactly or within ~1e-6; 1e-3 of a unit of log is a
# factor 1.001, so an interior optimum this close to a bound at e^±10 is not a practical worry.
_BOUND_TOLERANCE = 1e-3


def _reason(status: FitStatus, detail: str = "") -> str:
    base = {
        FitStatus.OK: "",
        FitStatus.NO_DATA: "no judged attempts",
        FitStatus.TOO_FEW_POINTS: "fewer than 3 points of the coverage curve",
        FitStatus.TOO_FEW_ATTEMPTS: "no task has 2 or more attempts",
        FitStatus.TOO_FEW_SOLVES: f"fewer than {MIN_SOLVED_TASKS} solved tasks or {MIN_SOLVES} solved attempts",
        FitStatus.AT_BOUND: "a parameter is at the bound of its range",
        FitStatus.FAILED: "the optimiser failed",
    }[status]
    return f"{base} ({detail})" if detail else base


@dataclass(frozen=True)
class Evidence:
    """How much the attempts say: what the solve thresholds are checked against."""

    tasks: int
    """Tasks with at least one judged attempt."""
    attempts: int
    solved_tasks: int
    """Tasks solved at least once."""
    solves: int
    """Solved attempts over all tasks."""

    @property
    def enough_solves(self) -> bool:
        """At least ``MIN_SOLVED_TASKS`` solved tasks and ``MIN_SOLVES`` solved attempts."""
        return self.solved_tasks >= MIN_SOLVED_TASKS and self.solves >= MIN_SOLVES

    def describe(self) -> str:
        """E.g. "1 solve in 108 attempts, 1 of 18 tasks solved"."""
        return (f"{self.solves} solve{'' if self.solves == 1 else 's'} in {self.attempts} attempts, "
                f"{self.solved_tasks} of {self.tasks} tasks solved")


def evidence(tasks: Sequence[TaskAttempts]) -> Evidence:
    """Counts of tasks, attempts and solves, over tasks with at least one attempt."""
    judged = [t for t in tasks if t.n > 0]
    return Evidence(tasks=len(judged), attempts=sum(t.n for t in judged),
                    solved_tasks=sum(1 for t in judged if t.c > 0), solves=sum(t.c for t in judged))


@dataclass(frozen=True)
class Prediction:
    """Predicted coverage at ``k`` with its percentile bootstrap interval over tasks."""

    k: int
    value: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        """``{"k", "value", "low", "high"}`` for the JSON report."""
        return {"k": self.k, "value": self.value, "low": self.low, "high": self.high}


def _curve_json(curve: Sequence[Prediction]) -> list[dict[str, float]] | None:
    # None, not []: "no curve" is a statement, and a reader indexing an empty list would crash later.
    return [p.as_dict() for p in curve] if curve else None


def _interval(estimate: np.ndarray, draws: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of ``draws`` (bootstrap × k). A percentile interval can miss its own
    estimate when the bootstrap distribution is lopsided, so it is widened to include the estimate
    rather than report an estimate outside its own interval."""
    tail = (1 - level) / 2
    low = np.minimum(np.quantile(draws, tail, axis=0), estimate)
    high = np.maximum(np.quantile(draws, 1 - tail, axis=0), estimate)
    return low, high


def _check_bootstrap(bootstrap: int, level: float) -> None:
    if bootstrap < 1:
        raise ValueError(f"bootstrap must be >= 1, got {bootstrap}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")


# ---------------------------------------------------------------------------------------------
# The exponentiated power law.

# Bounds for the power law's parameters. Both must be <= 0: with a < 0, log coverage = a·k^b
# rises towards 0 (coverage towards 1) as k grows only if b < 0; a = 0 is coverage 1 everywhere
# and b = 0 a flat curve. The lower bounds keep the optimiser off absurd values: exp(-50) is
# coverage 0 to double precision, and b = -5 already jumps from nothing to everything within a
# factor of a few in k. A fit that ends on any of them is ``AT_BOUND``.
_A_BOUNDS = (-50.0, 0.0)
_B_BOUNDS = (-5.0, 0.0)


@dataclass(frozen=True)
class PowerLawFit:
    """``coverage(k) ≈ exp(a · k^b)``, fitted by least squares on the coverage scale."""

    status: FitStatus
    a: float | None
    """None when nothing could be fitted (too few points, every coverage 0)."""
    b: float | None
    rmse: float | None
    """Root-mean-square error of the fit on the coverage scale, over the points fitted."""
    points: int
    """How many (k, coverage) points were fitted."""
    reason: str = ""
    """Why there is no prediction ("" when ``status`` is ok)."""

    @property
    def exponent(self) -> float | None:
        """``−b``: the power-law exponent of ``−log coverage ∝ k^b``, comparable with the
        distributional model's α."""
        return None if self.b is None else -self.b

    def predict(self, k: float) -> float:
        """Predicted coverage at ``k`` (any real ``k > 0``). Raises ValueError unless the status is
        ok: a fit at a bound or on too little evidence has no prediction to give."""
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        if self.status is not FitStatus.OK or self.a is None or self.b is None:
            raise ValueError(f"no prediction: {self.reason or self.status.value}")
        return math.exp(self.a * k**self.b)


def _power_law(k: np.ndarray, a: float, b: float) -> np.ndarray:
    return np.exp(a * np.power(k, b))


def _power_law_guess(k: np.ndarray, cov: np.ndarray) -> tuple[float, float]:
    """A starting point: a straight line through log(−log c) = log(−a) + b·log k.

    Only points with 0 < c < 1 have a finite log(−log c); with fewer than two of them (or a slope
    of the wrong sign) fall back to a generic curve rising from about exp(-1).
    """
    inside = (cov > 0) & (cov < 1)
    a0, b0 = -1.0, -0.5
    if np.count_nonzero(inside) >= 2 and np.unique(k[inside]).size >= 2:
        slope, intercept = np.polyfit(np.log(k[inside]), np.log(-np.log(cov[inside])), 1)
        if slope < 0:
            a0, b0 = -math.exp(intercept), float(slope)
    # Strictly inside the bounds: the trust-region solver starts from a strictly feasible point.
    a0 = min(max(a0, _A_BOUNDS[0] + 1e-6), _A_BOUNDS[1] - 1e-6)
    b0 = min(max(b0, _B_BOUNDS[0] + 1e-6), _B_BOUNDS[1] - 1e-6)
    return a0, b0


def _power_law_params(k: np.ndarray, cov: np.ndarray, p0: tuple[float, float]) -> tuple[float, float] | None:
    try:
        (a, b), _ = optimize.curve_fit(
            _power_law,
            k,
            cov,
            p0=p0,
            bounds=([_A_BOUNDS[0], _B_BOUNDS[0]], [_A_BOUNDS[1], _B_BOUNDS[1]]),
            method="trf",
            # The data are exact to ~1e-6 in the tests and a few 1e-3 in practice: tight tolerances
            # cost nothing on two parameters and keep exact data recovered exactly.
            ftol=1e-12,
            xtol=1e-12,
            gtol=1e-12,
            max_nfev=10_000,
        )
    except (RuntimeError, ValueError):  # curve_fit's "optimal parameters not found"
        return None
    return (float(a), float(b)) if math.isfinite(a) and math.isfinite(b) else None


def fit_power_law(ks: Sequence[int], coverage: Sequence[float]) -> PowerLawFit:
    """Fit ``coverage(k) ≈ exp(a · k^b)`` (a <= 0, b <= 0) to measured points.

    The fit is least squares on the coverage scale, not a line through log(−log coverage):
    coverage 0 (nothing solved yet at small k) has no logarithm but is a perfectly good point on
    the coverage scale, and the coverage scale is the one the report reads.

    Status ``too_few_points`` with fewer than 3 points (two parameters through two points is an
    exact fit that says nothing about how well the law describes the curve), ``too_few_solves``
    when every coverage is 0 (the law then has no finite best fit: it only approaches 0 as
    a → −∞), ``at_bound`` when a parameter ends on a bound (e.g. a flat curve, b = 0).
    """
    k = np.asarray(ks, dtype=float)
    cov = np.asarray(coverage, dtype=float)
    if k.shape != cov.shape or k.ndim != 1:
        raise ValueError(f"ks and coverage must be equal-length sequences, got {k.shape} and {cov.shape}")
    if np.any(k <= 0):
        raise ValueError("every k must be positive")
    if np.any((cov < 0) | (cov > 1)) or not np.all(np.isfinite(cov)):
        raise ValueError("every coverage must be in [0, 1]")
    if k.size < 3:
        return PowerLawFit(FitStatus.TOO_FEW_POINTS, None, None, None, int(k.size),
                           _reason(FitStatus.TOO_FEW_POINTS))
    if not np.any(cov > 0):
        return PowerLawFit(FitStatus.TOO_FEW_SOLVES, None, None, None, int(k.size),
                           _reason(FitStatus.TOO_FEW_SOLVES, "every coverage is 0"))
    params = _power_law_params(k, cov, _power_law_guess(k, cov))
    if params is None:
        return PowerLawFit(FitStatus.FAILED, None, None, None, int(k.size), _reason(FitStatus.FAILED))
    a, b = params
    rmse = float(np.sqrt(np.mean((_power_law(k, a, b) - cov) ** 2)))
    at = [name for name, value, (lo, hi) in (("a", a, _A_BOUNDS), ("b", b, _B_BOUNDS))
          if value - lo < _BOUND_TOLERANCE or hi - value < _BOUND_TOLERANCE]
    status = FitStatus.AT_BOUND if at else FitStatus.OK
    return PowerLawFit(status, a, b, rmse, int(k.size), _reason(status, ", ".join(at)))


def _pass_matrix(tasks: Sequence[TaskAttempts], ks: Sequence[int]) -> np.ndarray:
    """Unbiased pass@k per task (rows) and k (columns); NaN where the task has fewer than k
    attempts, so a mean over tasks counts only those that reached k (as the report's curve does)."""
    return np.array([[pass_at_k(t.n, t.c, k) if t.n >= k else np.nan for k in ks] for t in tasks], dtype=float)


def coverage_points(tasks: Sequence[TaskAttempts], ks: Sequence[int]) -> list[float]:
    """Mean unbiased pass@k over the tasks with at least k attempts, at each k (NaN where none)."""
    matrix = _pass_matrix([t for t in tasks if t.n > 0], ks)
    with np.errstate(invalid="ignore"):
        return [float(v) for v in np.nanmean(matrix, axis=0)] if matrix.size else [math.nan] * len(ks)


@dataclass(frozen=True)
class PowerLawExtrapolation:
    """The power law fitted to the coverage curve at ``fitted_ks``, and its curve at further k."""

    fit: PowerLawFit
    fitted_ks: tuple[int, ...]
    curve: tuple[Prediction, ...]
    """Empty unless ``fit.status`` is ok."""

    def as_dict(self) -> dict[str, Any]:
        """The JSON report's ``fits.power_law``: status and reason, parameters, the implied exponent
        ``−b``, and ``curve`` (k, value, low, high), null unless the status is ok."""
        fit = self.fit
        return {"status": fit.status.value, "reason": fit.reason, "a": fit.a, "b": fit.b, "exponent": fit.exponent,
                "rmse": fit.rmse, "points": fit.points, "fitted_ks": list(self.fitted_ks),
                "curve": _curve_json(self.curve)}


def extrapolate_power_law(
    tasks: Sequence[TaskAttempts],
    fit_ks: Sequence[int],
    ks: Sequence[int],
    *,
    bootstrap: int = 200,
    seed: int = 0,
    level: float = 0.95,
) -> PowerLawExtrapolation:
    """Fit ``exp(a · k^b)`` to the measured coverage (mean unbiased pass@k) at ``fit_ks`` and
    predict it at ``ks`` with a percentile bootstrap interval over tasks.

    Tasks are resampled with replacement, the coverage points recomputed and the law refitted
    ``bootstrap`` times. The fit's status is ``too_few_solves`` below the same solve thresholds as
    the distributional model (a curve through a handful of solves is no law), and then, like any
    status other than ok, it gives no curve.
    """
    _check_bootstrap(bootstrap, level)
    judged = [t for t in tasks if t.n > 0]
    fit_ks = [k for k in fit_ks if any(t.n >= k for t in judged)]
    if not judged:
        return PowerLawExtrapolation(PowerLawFit(FitStatus.NO_DATA, None, None, None, 0, _reason(FitStatus.NO_DATA)),
                                     tuple(fit_ks), ())
    matrix = _pass_matrix(judged, fit_ks)
    fit = fit_power_law(fit_ks, coverage_points(judged, fit_ks))
    seen = evidence(judged)
    if fit.status is FitStatus.OK and not seen.enough_solves:
        fit = replace(fit, status=FitStatus.TOO_FEW_SOLVES, reason=_reason(FitStatus.TOO_FEW_SOLVES, seen.describe()))
    if fit.status is not FitStatus.OK:
        return PowerLawExtrapolation(fit, tuple(fit_ks), ())
    assert fit.a is not None and fit.b is not None
    k_arr = np.asarray(fit_ks, dtype=float)
    target = np.asarray(ks, dtype=float)
    rng = np.random.default_rng(seed)
    present = ~np.isnan(matrix)
    values = np.where(present, matrix, 0.0)
    draws = np.empty((bootstrap, target.size))
    for i in range(bootstrap):
        w = np.bincount(rng.integers(0, len(judged), size=len(judged)), minlength=len(judged)).astype(float)
        reached = w @ present
        cov = np.clip(np.divide(w @ values, reached, out=np.zeros_like(reached), where=reached > 0), 0.0, 1.0)
        # A resample with every coverage 0 is a law at a → −∞: coverage 0 at every k. A resample
        # whose refit is at a bound still says where the data pull; its curve counts as it is.
        params = _power_law_params(k_arr, cov, (fit.a, fit.b)) if np.any(cov > 0) else None
        draws[i] = 0.0 if params is None else _power_law(target, *params)
    estimate = _power_law(target, fit.a, fit.b)
    low, high = _interval(estimate, draws, level)
    curve = tuple(Prediction(int(k), float(e), float(lo), float(hi)) for k, e, lo, hi in zip(ks, estimate, low, high))
    return PowerLawExtrapolation(fit, tuple(fit_ks), curve)


# ---------------------------------------------------------------------------------------------
# The distributional model: p = 0 with probability π0, else s · Beta(α, β).


class Variant(str, Enum):
    """Which of the distribution's parameters are free; the others are fixed at s = 1, π0 = 0."""

    BETA = "beta"
    """p ~ Beta(α, β)."""
    SCALED_BETA = "scaled_beta"
    """p = s · q, q ~ Beta(α, β): no task is solved more often than s."""
    ZERO_BETA = "zero_inflated_beta"
    """p = 0 with probability π0 (never solved, coverage plateaus at 1 − π0), else Beta(α, β)."""
    ZERO_SCALED_BETA = "zero_inflated_scaled_beta"
    """Both: p = 0 with probability π0, else s · Beta(α, β)."""

    @property
    def scaled(self) -> bool:
        """s is free."""
        return self in (Variant.SCALED_BETA, Variant.ZERO_SCALED_BETA)

    @property
    def zero(self) -> bool:
        """π0 is free."""
        return self in (Variant.ZERO_BETA, Variant.ZERO_SCALED_BETA)

    @property
    def parameters(self) -> int:
        """How many parameters the variant fits."""
        return 2 + self.scaled + self.zero


# The optimiser works on θ = (log α, log β, logit s, logit π0), each bounded to [−10, 10]: α, β in
# about [4.5e-5, 2.2e4], s and π0 in about [4.5e-5, 1 − 4.5e-5]. The bounds matter when the MLE
# is at infinity: nothing solved sends α → 0, every task with the same p sends α, β → ∞ together,
# s → 1 or π0 → 0 is the simpler variant. A fit that ends there is ``AT_BOUND`` and predicts
# nothing; the simpler variant, if that is what the data say, wins the selection anyway.
_THETA_BOUND = 10.0


@dataclass(frozen=True)
class TaskDistribution:
    """The distribution of per-task success probability p: 0 with probability ``zero`` (π0),
    otherwise ``scale`` · Beta(``alpha``, ``beta``)."""

    alpha: float
    beta: float
    scale: float = 1.0
    """s in (0, 1]: no task's p exceeds it."""
    zero: float = 0.0
    """π0 in [0, 1): the share of tasks never solved, whatever k."""

    def __post_init__(self) -> None:
        if not (self.alpha > 0 and self.beta > 0 and 0 < self.scale <= 1 and 0 <= self.zero < 1):
            raise ValueError(f"need alpha, beta > 0, scale in (0, 1], zero in [0, 1); got {self}")

    def coverage(self, k: float) -> float:
        """``1 − E[(1 − p)^k]``: the chance that at least one of k fresh attempts at a random task
        succeeds. Exact under the model, so it extrapolates to any k. Real k >= 0 when scale is 1;
        with scale < 1, k must be a whole number (the sum below runs over j = 0..k)."""
        return float(self.coverage_curve([k])[0])

    def coverage_curve(self, ks: Sequence[float]) -> np.ndarray:
        """``coverage(k)`` at each k."""
        return np.array([_coverage(self.alpha, self.beta, self.scale, self.zero, k) for k in ks], dtype=float)

    @property
    def mean(self) -> float:
        """E[p] = (1 − π0) · s · α / (α + β): the mean single-attempt solve rate, coverage(1)."""
        return (1 - self.zero) * self.scale * self.alpha / (self.alpha + self.beta)

    @property
    def plateau(self) -> float:
        """``1 − π0``: coverage as k → ∞."""
        return 1 - self.zero

    @property
    def exponent(self) -> float:
        """The implied power-law exponent α: ``plateau − coverage(k) ∝ k^−α`` at large k, so with
        π0 = 0, ``−log coverage(k) ≈ 1 − coverage(k) ∝ k^−α`` (Schaeffer et al. 2025: a density
        ~ p^(α−1) near p = 0 gives a power law of exponent α; s only rescales k)."""
        return self.alpha


def _logsumexp(x: np.ndarray) -> np.ndarray:
    """log Σ exp over each row. scipy's logsumexp costs ~0.1 ms a call in checks and dispatch, and
    the bootstrap calls this once per k per resample; every row here has a finite maximum."""
    top = x.max(axis=1)
    return top + np.log(np.exp(x - top[:, None]).sum(axis=1))


def _coverage(a: float, b: float, s: float, z: float, k: float) -> float:
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    log_norm = special.betaln(a, b)
    if s >= 1.0:
        # E[(1 − q)^k] = B(α, β + k) / B(α, β).
        log_fail = special.betaln(a, b + k) - log_norm
    else:
        if k != int(k):
            raise ValueError(f"with scale < 1, k must be a whole number, got {k}")
        # (1 − s·q)^k = ((1 − s) + s·(1 − q))^k = Σ_j C(k, j) (1 − s)^(k−j) s^j (1 − q)^j: every
        # term positive, so no cancellation however large k, and E[(1 − q)^j] = B(α, β + j)/B(α, β).
        j = np.arange(int(k) + 1, dtype=float)
        terms = (special.gammaln(k + 1) - special.gammaln(j + 1) - special.gammaln(k - j + 1)
                 + j * math.log(s) + (k - j) * math.log1p(-s) + special.betaln(a, b + j) - log_norm)
        log_fail = _logsumexp(terms[None, :])[0]
    # −expm1 keeps precision when coverage is tiny (log ratio near 0).
    return (1 - z) * float(-math.expm1(min(float(log_fail), 0.0)))


@dataclass(frozen=True)
class _Counts:
    """Tasks collapsed to distinct (n, c) pairs: the likelihood depends on nothing else, and a
    bootstrap resample is then just a new weight per pair. Also the fixed index arrays of the
    scaled likelihood, which sums over j = 0..n − c for each pair."""

    n: np.ndarray
    c: np.ndarray
    weight: np.ndarray
    group: np.ndarray
    """For each original task (n > 0), the index of its (n, c) pair."""
    log_binom: np.ndarray
    """log C(n, c) per pair: constant in the parameters, added only to report the true likelihood."""
    j: np.ndarray
    """0..max(n − c), one row."""
    log_binom_j: np.ndarray
    """log C(n − c, j) per pair and j; −inf where j > n − c (those terms do not exist)."""
    c_plus_j: np.ndarray
    """c + j per pair and j, clipped to max n (clipped cells are the non-existent terms)."""
    t: np.ndarray
    """0..max n: the values c + j takes."""


def _counts(tasks: Sequence[TaskAttempts]) -> _Counts | None:
    pairs = np.array([(t.n, t.c) for t in tasks if t.n > 0], dtype=float).reshape(-1, 2)
    if pairs.shape[0] == 0:
        return None
    unique, group, weight = np.unique(pairs, axis=0, return_inverse=True, return_counts=True)
    n, c = unique[:, 0], unique[:, 1]
    m = n - c
    j = np.arange(int(m.max()) + 1, dtype=float)[None, :]
    with np.errstate(invalid="ignore"):
        log_binom_j = np.where(j <= m[:, None], special.gammaln(m[:, None] + 1) - special.gammaln(j + 1)
                               - special.gammaln(np.maximum(m[:, None] - j, 0) + 1), -np.inf)
    return _Counts(
        n=n, c=c, weight=weight.astype(float), group=group.reshape(-1),
        log_binom=special.gammaln(n + 1) - special.gammaln(c + 1) - special.gammaln(n - c + 1),
        j=j, log_binom_j=log_binom_j, c_plus_j=np.minimum(c[:, None] + j, n.max()).astype(int),
        t=np.arange(n.max() + 1, dtype=float),
    )


def _unpack(theta: np.ndarray, variant: Variant) -> tuple[float, float, float, float]:
    """(α, β, s, π0) from the variant's free parameters (log α, log β[, logit s][, logit π0])."""
    a, b = math.exp(theta[0]), math.exp(theta[1])
    rest = list(theta[2:])
    s = float(special.expit(rest.pop(0))) if variant.scaled else 1.0
    z = float(special.expit(rest.pop(0))) if variant.zero else 0.0
    return a, b, s, z


def _pack(a: float, b: float, s: float, z: float, variant: Variant) -> np.ndarray:
    theta = [math.log(a), math.log(b)]
    if variant.scaled:
        theta.append(float(special.logit(s)))
    if variant.zero:
        theta.append(float(special.logit(z)))
    return np.clip(np.array(theta), -_THETA_BOUND + 1e-6, _THETA_BOUND - 1e-6)


def _neg_log_lik(theta: np.ndarray, counts: _Counts, w: np.ndarray, variant: Variant) -> tuple[float, np.ndarray]:
    """Negative log-likelihood (without the binomial coefficients C(n, c)) and its gradient in the
    variant's free parameters. The analytic gradient keeps each fit to a few dozen cheap
    evaluations, which is what lets the bootstrap refit hundreds of times."""
    a, b, s, z = _unpack(theta, variant)
    n, c = counts.n, counts.c
    m = n - c
    psi_ab, psi_a, psi_b = special.digamma(a + b), special.digamma(a), special.digamma(b)
    log_norm = special.betaln(a, b)
    if not variant.scaled:
        # The beta-binomial in closed form: log B(c + α, n − c + β) − log B(α, β).
        ell = special.betaln(c + a, m + b) - log_norm
        psi_n = special.digamma(n + a + b)
        d_a = special.digamma(c + a) - psi_n - psi_a + psi_ab
        d_b = special.digamma(m + b) - psi_n - psi_b + psi_ab
    else:
        # P(c | n, s·q) integrated over q: with (1 − s·q)^(n−c) expanded as in ``_coverage``,
        # s^c Σ_j C(n−c, j) s^j (1−s)^(n−c−j) B(c + α, β + j) / B(α, β). The special functions
        # depend on j or on c + j alone, so they are computed on short vectors and gathered, and
        # whatever depends on the pair alone is added after the sum: on a run of 250 attempts per
        # task this matrix is the whole cost of a fit, so it gets as few passes as possible.
        j = counts.j
        log_s, log_1s = math.log(s), math.log1p(-s)
        row = j * (log_s - log_1s) + special.gammaln(b + j)
        abt = a + b + counts.t
        terms = counts.log_binom_j + row - special.gammaln(abt)[counts.c_plus_j]
        top = terms.max(axis=1)
        e = np.exp(terms - top[:, None])  # each pair's posterior over j, unnormalised
        total_e = e.sum(axis=1)
        ell = (top + np.log(total_e) + c * log_s + m * log_1s + special.gammaln(c + a) - log_norm)

        def mean_over_j(x: np.ndarray) -> np.ndarray:
            return (e * x).sum(axis=1) / total_e

        psi_abt = mean_over_j(special.digamma(abt)[counts.c_plus_j])
        mean_j = mean_over_j(j)
        d_a = special.digamma(c + a) - psi_a + psi_ab - psi_abt
        d_b = mean_over_j(special.digamma(b + j)) - psi_abt - psi_b + psi_ab
        d_s = (c + mean_j) / s - (m - mean_j) / (1 - s)
    if variant.zero:
        # Mixture with a point mass at p = 0, which only a task never solved can come from.
        log_solvable = math.log1p(-z) + ell
        unsolved = c == 0
        total = np.where(unsolved, np.logaddexp(log_solvable, math.log(z)), log_solvable)
        share = np.exp(log_solvable - total)  # the solvable component's posterior share
        # d/d logit π0; only unsolved tasks' terms involve exp(−total), which a solved task's very
        # unlikely count would overflow, so they are computed on those alone.
        d_eta = np.full_like(ell, -z)
        d_eta[unsolved] = z * (1 - z) * -np.expm1(ell[unsolved]) * np.exp(-total[unsolved])
        d_a, d_b = share * d_a, share * d_b
        if variant.scaled:
            d_s = share * d_s
    else:
        # Every pair wholly solvable (a share of 1): no product to take, the sums below are the same.
        total, d_eta = ell, None
    grad = [a * np.dot(w, d_a), b * np.dot(w, d_b)]
    if variant.scaled:
        grad.append(s * (1 - s) * np.dot(w, d_s))
    if variant.zero:
        grad.append(np.dot(w, d_eta))
    return -float(np.dot(w, total)), -np.array(grad, dtype=float)


def _moment_guess(n: np.ndarray, c: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Method-of-moments (α, β), so the optimiser begins near the answer.

    With mean μ and ρ = 1/(α+β+1), Var(c/n) = μ(1−μ)·(E[1/n] + ρ·(1 − E[1/n])); solve for ρ.
    """
    x = c / n
    mu = float(np.clip(np.dot(w, x) / w.sum(), 1e-3, 1 - 1e-3))
    var = float(np.dot(w, (x - mu) ** 2) / w.sum())
    inv_n = float(np.dot(w, 1 / n) / w.sum())
    base = mu * (1 - mu)
    rho = (var / base - inv_n) / (1 - inv_n) if inv_n < 1 else 0.5  # all n = 1: ρ is unidentified
    rho = min(max(rho, 1e-3), 0.999)
    spread = 1 / rho - 1
    return mu * spread, (1 - mu) * spread


def _optimise(counts: _Counts, w: np.ndarray, variant: Variant, start: np.ndarray) -> tuple[np.ndarray, float]:
    # TNC (bounded truncated Newton) rather than L-BFGS-B: both take a few dozen evaluations here,
    # but L-BFGS-B calls into multithreaded BLAS on every iteration, and on a busy machine that
    # made a tiny fit take ~100 times longer. TNC is plain C and reaches the same optimum.
    theta = _tnc(lambda x: _neg_log_lik(x, counts, w, variant), np.asarray(start, dtype=float))
    value, _ = _neg_log_lik(theta, counts, w, variant)
    return theta, value


_TNC_MAXFUN = 2000

try:
    # The C routine behind optimize.minimize(method="TNC"). Where a likelihood is flat along a
    # ridge (every task with about the same p: the scaled Beta's s trades against α/(α+β)), a fit
    # runs to its 2,000 evaluations, and minimize's per-call wrappers (copies, memoisation, checks)
    # cost as much as the likelihood itself; the bootstrap makes ~800 such fits. Called with the
    # arguments minimize passes it, it visits the same points and returns the same optimum, to the
    # bit (tests/test_fits.py compares the two); minimize is the fallback where scipy lacks it.
    from scipy.optimize import _moduleTNC
except ImportError:  # pragma: no cover - every scipy this project supports has it
    _moduleTNC = None


def _tnc(fun_and_grad, start: np.ndarray) -> np.ndarray:
    """The bounded minimum of ``fun_and_grad`` (value, gradient) from ``start``, each parameter in
    [−_THETA_BOUND, _THETA_BOUND]: exactly what ``optimize.minimize(method="TNC", jac=True,
    options={"maxfun": 2000})`` returns as ``x``."""
    if _moduleTNC is None:
        return _tnc_minimize(fun_and_grad, start)
    bound = np.full(start.size, _THETA_BOUND)
    # minimize's defaults for TNC: no messages (0), maxCGit -1, eta -1, stepmx 0, accuracy 0,
    # fmin 0, ftol -1, xtol -1, pgtol -1, rescale -1, no callback; empty scale and offset.
    try:
        _, _, _, x, _, _ = _moduleTNC.tnc_minimize(
            fun_and_grad, start.copy(), -bound, bound, np.array([]), np.array([]), 0, -1, _TNC_MAXFUN,
            -1, 0, 0, 0, -1, -1, -1, -1, None)
    except (TypeError, ValueError):  # a scipy whose private routine takes other arguments
        return _tnc_minimize(fun_and_grad, start)
    return np.asarray(x, dtype=float)


def _tnc_minimize(fun_and_grad, start: np.ndarray) -> np.ndarray:
    """``_tnc`` through scipy's public interface."""
    result = optimize.minimize(
        fun_and_grad, start, jac=True, method="TNC",
        bounds=[(-_THETA_BOUND, _THETA_BOUND)] * start.size, options={"maxfun": _TNC_MAXFUN},
    )
    return np.asarray(result.x, dtype=float)


def _starts(counts: _Counts, variant: Variant) -> list[np.ndarray]:
    """A few starting points: the mixture likelihood can have more than one local optimum (a
    point mass at 0 against a Beta piled up near 0), so each variant is fitted from each."""
    w = counts.weight
    unsolved = float(np.dot(w, counts.c == 0) / w.sum())
    solved = counts.c > 0
    a0, b0 = _moment_guess(counts.n, counts.c, w)
    # For the zero-inflated variants, also start from the moments of the solved tasks alone: the
    # Beta then describes the tasks that can be solved, π0 the rest.
    a1, b1 = _moment_guess(counts.n[solved], counts.c[solved], w[solved]) if solved.any() else (a0, b0)
    top = float(np.max(counts.c / counts.n))
    scales = (0.95, min(max(1.5 * top, 0.05), 0.95)) if variant.scaled else (1.0,)
    zeros = (min(max(0.5 * unsolved, 0.01), 0.9), min(max(0.9 * unsolved, 0.01), 0.95)) if variant.zero else (0.0,)
    seeds = [(a0, b0)] + ([(a1, b1)] if variant.zero else [])
    starts = [_pack(a, b, s, z, variant) for a, b in seeds for s in scales for z in zeros]
    # Every task solved, or none: several of these coincide, and one fit from each point is enough.
    return [starts[i] for i in sorted(np.unique(np.round(starts, 9), axis=0, return_index=True)[1])]


def _at_bound(theta: np.ndarray, variant: Variant) -> tuple[str, ...]:
    names = ["alpha", "beta"] + (["scale"] if variant.scaled else []) + (["zero"] if variant.zero else [])
    return tuple(name for name, value in zip(names, theta) if _THETA_BOUND - abs(value) < _BOUND_TOLERANCE)


@dataclass(frozen=True)
class VariantFit:
    """One variant fitted by maximum likelihood."""

    variant: Variant
    distribution: TaskDistribution
    log_likelihood: float
    """The log-likelihood at the fit, binomial coefficients included."""
    aic: float
    """``2 · parameters − 2 · log_likelihood``; lower is better."""
    at_bound: tuple[str, ...]
    """The parameters (alpha, beta, scale, zero) that ended on a bound of their range."""


@dataclass(frozen=True)
class DistributionFit:
    """The chosen variant and why it may or may not predict. ``distribution`` is set whenever a
    fit was made, also when the status forbids a prediction, so its parameters can be reported."""

    status: FitStatus
    reason: str
    """Why there is no prediction ("" when ``status`` is ok)."""
    evidence: Evidence
    variant: Variant | None = None
    distribution: TaskDistribution | None = None
    log_likelihood: float | None = None
    aic: float | None = None
    at_bound: tuple[str, ...] = ()
    candidates: tuple[VariantFit, ...] = ()
    """Every variant fitted, in ``Variant`` order, for the record."""

    def predict(self, k: float) -> float:
        """Coverage at ``k`` under the chosen fit. Raises ValueError unless the status is ok."""
        if self.status is not FitStatus.OK or self.distribution is None:
            raise ValueError(f"no prediction: {self.reason or self.status.value}")
        return self.distribution.coverage(k)


def _fit_variant(counts: _Counts, variant: Variant) -> tuple[np.ndarray, float] | None:
    best: tuple[np.ndarray, float] | None = None
    for start in _starts(counts, variant):
        theta, value = _optimise(counts, counts.weight, variant, start)
        if math.isfinite(value) and np.all(np.isfinite(theta)) and (best is None or value < best[1]):
            best = (theta, value)
    return best


def fit_distribution(tasks: Sequence[TaskAttempts], variants: Sequence[Variant] = tuple(Variant)) -> DistributionFit:
    """Fit the per-task distribution of p to the tasks' (n, c) and choose a variant.

    Each variant maximises ``Σ_tasks log P(c | n)`` (each task with its own n), with
    ``P(c | n) = π0·[c = 0] + (1 − π0) · ∫ Binomial(c; n, s·q) Beta(q; α, β) dq``.

    The variant is chosen by AIC, ``2 · parameters − 2 · log L``, not BIC. The choice serves one
    purpose, extrapolation, and AIC is the criterion of predictive accuracy (asymptotically
    leave-one-task-out cross-validation), where BIC is one of finding the "true" variant. Fewer
    parameters is not the cautious side here: the plain Beta, without π0, asserts that coverage
    climbs to 1, a stronger claim about large k than a plateau. BIC's heavier penalty (ln(tasks)/2
    per parameter against 1) kept that claim where the data held a point mass at 0: on synthetic
    runs (300 tasks, 25 attempts each, predicting k = 250; 20 seeds per truth) the mean relative
    error of the chosen variant was 0.136 with BIC against 0.089 with AIC for a zero-inflated
    Beta, 0.086 against 0.078 for a zero-inflated scaled Beta, and about equal (0.03, 0.07) for a
    plain and a scaled Beta. When a richer variant's extra parameter runs to the bound that makes
    it the simpler one (s → 1, π0 → 0), both have the same likelihood and AIC takes the simpler.

    Status, in order: ``no_data``; ``too_few_attempts`` (no task with 2 attempts); ``failed``;
    ``too_few_solves`` (see ``MIN_SOLVED_TASKS``, ``MIN_SOLVES``); ``at_bound`` (a parameter of the
    chosen variant on its bound); else ``ok``. The fit is made, and reported, in every case but the
    first three.
    """
    if not variants:
        raise ValueError("need at least one variant")
    seen = evidence(tasks)
    counts = _counts(tasks)
    if counts is None:
        return DistributionFit(FitStatus.NO_DATA, _reason(FitStatus.NO_DATA), seen)
    if counts.n.max() < 2:
        return DistributionFit(FitStatus.TOO_FEW_ATTEMPTS, _reason(FitStatus.TOO_FEW_ATTEMPTS), seen)
    candidates = []
    for variant in variants:
        fitted = _fit_variant(counts, variant)
        if fitted is None:
            continue
        theta, value = fitted
        log_lik = float(np.dot(counts.weight, counts.log_binom)) - value
        candidates.append(VariantFit(
            variant=variant, distribution=TaskDistribution(*_unpack(theta, variant)), log_likelihood=log_lik,
            aic=2 * variant.parameters - 2 * log_lik, at_bound=_at_bound(theta, variant)))
    if not candidates:
        return DistributionFit(FitStatus.FAILED, _reason(FitStatus.FAILED), seen)
    chosen = min(candidates, key=lambda f: f.aic)
    if not seen.enough_solves:
        status, detail = FitStatus.TOO_FEW_SOLVES, seen.describe()
    elif chosen.at_bound:
        status, detail = FitStatus.AT_BOUND, ", ".join(chosen.at_bound)
    else:
        status, detail = FitStatus.OK, ""
    return DistributionFit(status, _reason(status, detail), seen, chosen.variant, chosen.distribution,
                           chosen.log_likelihood, chosen.aic, chosen.at_bound, tuple(candidates))


@dataclass(frozen=True)
class DistributionExtrapolation:
    """The distributional fit and its curve at further k."""

    fit: DistributionFit
    curve: tuple[Prediction, ...]
    """Empty unless ``fit.status`` is ok."""
    exponent_low: float | None = None
    """Bootstrap interval of the implied exponent α (None without a curve)."""
    exponent_high: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON report's ``fits.distribution``: status and reason, the chosen variant and how it
        was chosen, its parameters and log-likelihood, the implied exponent α with its interval, the
        plateau, the evidence, every candidate variant, and ``curve`` (k, value, low, high), null
        unless the status is ok."""
        fit, dist = self.fit, self.fit.distribution
        return {
            "model": "p = 0 with probability zero, else scale * q, q ~ Beta(alpha, beta); coverage(k) = 1 - E[(1-p)^k]",
            "status": fit.status.value, "reason": fit.reason,
            "variant": None if fit.variant is None else fit.variant.value, "selection": "AIC",
            "parameters": None if dist is None else _parameters(dist),
            "log_likelihood": fit.log_likelihood, "aic": fit.aic, "at_bound": list(fit.at_bound),
            "exponent": None if dist is None else dist.exponent,
            "exponent_low": self.exponent_low, "exponent_high": self.exponent_high,
            "plateau": None if dist is None else dist.plateau,
            "evidence": asdict(fit.evidence),
            "candidates": [{"variant": c.variant.value, "parameters": _parameters(c.distribution),
                            "log_likelihood": c.log_likelihood, "aic": c.aic, "at_bound": list(c.at_bound)}
                           for c in fit.candidates],
            "curve": _curve_json(self.curve),
        }


def _parameters(dist: TaskDistribution) -> dict[str, float]:
    return {"alpha": dist.alpha, "beta": dist.beta, "scale": dist.scale, "zero": dist.zero}


def extrapolate_distribution(
    tasks: Sequence[TaskAttempts],
    ks: Sequence[int],
    *,
    bootstrap: int = 200,
    seed: int = 0,
    level: float = 0.95,
) -> DistributionExtrapolation:
    """``fit_distribution`` and, when its status is ok, coverage at each k with a percentile
    bootstrap interval over tasks, and the same interval for the exponent α.

    Tasks are resampled with replacement (the task is the unit the model treats as independent)
    ``bootstrap`` times, and each resample goes through the whole procedure: every variant
    refitted (warm-started from its full-data fit) and one chosen by AIC again. Keeping the
    full-data choice instead would be four times cheaper but blind to the choice itself: a point
    mass at 0 and a Beta piled up near 0 fit the first few attempts about equally well and part
    ways at large k. On synthetic data drawn with a point mass (two truths, 10 seeds each, 95%
    intervals at 10x the attempts seen), the interval conditional on the full-data choice missed
    the true coverage 5 times in 20, reselecting once. The estimate is the full-data fit's coverage.
    """
    _check_bootstrap(bootstrap, level)
    fit = fit_distribution(tasks)
    if fit.status is not FitStatus.OK:
        return DistributionExtrapolation(fit, ())
    assert fit.variant is not None and fit.distribution is not None
    counts = _counts(tasks)
    assert counts is not None
    dist = fit.distribution
    starts = [(c.variant, _pack(c.distribution.alpha, c.distribution.beta, c.distribution.scale,
                                c.distribution.zero, c.variant)) for c in fit.candidates]
    rng = np.random.default_rng(seed)
    tasks_n, groups = counts.group.size, counts.weight.size
    # Resampling tasks = a multinomial reweighting of the distinct (n, c) pairs.
    weights = [np.bincount(counts.group[rng.integers(0, tasks_n, size=tasks_n)], minlength=groups).astype(float)
               for _ in range(bootstrap)]
    draws = np.empty((bootstrap, len(ks)))
    alphas = np.empty(bootstrap)
    for i, (a, b, s, z) in enumerate(_refit(counts, w, starts) for w in weights):
        draws[i] = [_coverage(a, b, s, z, k) for k in ks]
        alphas[i] = a
    estimate = dist.coverage_curve(ks)
    low, high = _interval(estimate, draws, level)
    a_low, a_high = _interval(np.array([dist.alpha]), alphas[:, None], level)
    curve = tuple(Prediction(int(k), float(e), float(lo), float(hi)) for k, e, lo, hi in zip(ks, estimate, low, high))
    return DistributionExtrapolation(fit, curve, float(a_low[0]), float(a_high[0]))


def _refit(counts: _Counts, w: np.ndarray, starts: Sequence[tuple[Variant, np.ndarray]]) -> tuple[float, float, float, float]:
    """(α, β, s, π0) of the variant AIC chooses on the pairs weighted by ``w``, each variant
    refitted from its start."""
    best: tuple[float, tuple[float, float, float, float]] | None = None
    for variant, start in starts:
        theta, value = _optimise(counts, w, variant, start)
        aic = 2 * value + 2 * variant.parameters  # the C(n, c) terms are common to all variants
        if best is None or aic < best[0]:
            best = (aic, _unpack(theta, variant))
    assert best is not None
    return best[1]


# ---------------------------------------------------------------------------------------------
# Holdout: fit on the first half of the k range, predict the largest k.


@dataclass(frozen=True)
class Holdout:
    """Both models fitted on k <= ``k_fit_max`` and asked for coverage at ``k_target``."""

    k_fit_max: int
    k_target: int
    measured: float
    """Coverage at ``k_target`` measured on all attempts."""
    power_law: Prediction | None
    """The power law's prediction, None when its status is not ok."""
    power_law_status: FitStatus
    power_law_reason: str
    distribution: Prediction | None
    """The distributional model's prediction, None when its status is not ok."""
    distribution_status: FitStatus
    distribution_reason: str
    distribution_variant: Variant | None

    @property
    def power_law_error(self) -> float | None:
        """Prediction minus measurement (positive: the power law over-predicts)."""
        return None if self.power_law is None else self.power_law.value - self.measured

    @property
    def distribution_error(self) -> float | None:
        """Prediction minus measurement (positive: the distributional model over-predicts)."""
        return None if self.distribution is None else self.distribution.value - self.measured

    def as_dict(self) -> dict[str, Any]:
        """The JSON report's ``fits.holdout``: each model's prediction at ``predicted_k`` (value,
        low, high; null where its status is not ok) beside the measured coverage."""
        def model(prediction: Prediction | None, status: FitStatus, reason: str) -> dict[str, Any]:
            values = {"value": None, "low": None, "high": None} if prediction is None else {
                "value": prediction.value, "low": prediction.low, "high": prediction.high}
            return {"status": status.value, "reason": reason, **values}

        return {
            "fitted_on_k_up_to": self.k_fit_max, "predicted_k": self.k_target, "measured": self.measured,
            "power_law": model(self.power_law, self.power_law_status, self.power_law_reason),
            "distribution": {**model(self.distribution, self.distribution_status, self.distribution_reason),
                             "variant": None if self.distribution_variant is None else self.distribution_variant.value},
        }


def holdout(tasks: Sequence[TaskAttempts], *, bootstrap: int = 200, seed: int = 0) -> Holdout | None:
    """How well each model, fitted on the first half of the k range, predicts coverage at its end.

    K is the largest k every task reaches (the smallest n). Both models see only each task's first
    K//2 attempts, so the prediction at K is a real extrapolation: the power law is fitted to the
    truncated tasks' coverage (mean unbiased pass@k) at powers of two up to K//2 (and K//2
    itself), the distributional model to the truncated (n, c). ``measured`` is the coverage at K
    on all attempts. Each prediction carries its bootstrap interval, and is None where its fit's
    status is not ok (the status and reason say why).

    Returns None with no tasks or K < 4 (a first half of one attempt leaves nothing to fit).
    """
    judged = [t for t in tasks if t.n > 0]
    if not judged:
        return None
    k_target = min(t.n for t in judged)
    if k_target < 4:
        return None
    k_fit_max = k_target // 2
    truncated = [t.first(k_fit_max) for t in judged]
    law = extrapolate_power_law(truncated, ks_up_to(k_fit_max), [k_target], bootstrap=bootstrap, seed=seed)
    dist = extrapolate_distribution(truncated, [k_target], bootstrap=bootstrap, seed=seed)
    return Holdout(
        k_fit_max=k_fit_max,
        k_target=k_target,
        measured=coverage_points(judged, [k_target])[0],
        power_law=law.curve[0] if law.curve else None,
        power_law_status=law.fit.status,
        power_law_reason=law.fit.reason,
        distribution=dist.curve[0] if dist.curve else None,
        distribution_status=dist.fit.status,
        distribution_reason=dist.fit.reason,
        distribution_variant=dist.fit.variant,
    )
