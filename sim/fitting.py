"""The statistics of calibration (docs/traces.md, "Calibration"): a latency family fitted to observed times,
a probability from successes and trials, a constant hazard from events and exposure, each with a 95% interval.

Latencies: every family a scenario accepts is fitted by maximum likelihood; a family *fits* when a
Kolmogorov-Smirnov test against it keeps p >= `KS_LEVEL`, and of those the lowest AIC wins (so a two-parameter
family must earn its second parameter). The KS p-value is computed with the fitted parameters (no Lilliefors
correction), which makes it lenient: a family it rejects is surely wrong, one it keeps is merely not refuted.
When none fits, the values themselves are kept (`empirical`). Values all within `CONST_SPREAD_MS` of each other
are a constant: the trace's clock is milliseconds, a finer spread is not a distribution.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.scipy_stats import stats

CONFIDENCE = 0.95
KS_LEVEL = 0.05
CONST_SPREAD_MS = 1.0

_LOG_MAX = math.log(1e300)
"""Beyond this, an interval's upper end is unbounded rather than a float overflow."""

Interval = tuple[float, float | None]
"""A 95% interval; an upper end of None is unbounded."""


@dataclass(frozen=True, slots=True)
class LatencyFit:
    """A fitted latency: `family`, its `parameters`, `value` (the distribution in a scenario's words),
    `ks_p` (None for a constant or empirical values) and an interval per parameter."""

    family: str
    parameters: dict[str, float]
    value: Any
    ks_p: float | None
    aic: float | None
    intervals: dict[str, Interval]


@dataclass(frozen=True, slots=True)
class _Candidate:
    family: str
    parameters: dict[str, float]
    value: Any
    distribution: Any  # a frozen scipy distribution
    free: int  # parameters estimated


def _t(n: int) -> float:
    return float(stats().t.ppf(0.5 + CONFIDENCE / 2, n - 1))


def _chi2(q: float, df: float) -> float:
    return float(stats().chi2.ppf(q, df))


def _spread_interval(s: float, n: int) -> Interval:
    """The standard deviation's exact interval under normality, from the unbiased sample spread `s`."""
    low_q, high_q = (1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2
    return math.sqrt((n - 1) * s * s / _chi2(high_q, n - 1)), math.sqrt((n - 1) * s * s / _chi2(low_q, n - 1))


def _lognormal(x: np.ndarray) -> tuple[_Candidate, dict[str, Interval]] | None:
    if np.any(x <= 0):
        return None
    logs = np.log(x)
    mu, sigma = float(logs.mean()), float(logs.std())
    if sigma <= 0:
        return None
    n, s = len(x), float(logs.std(ddof=1))
    half = _t(n) * s / math.sqrt(n)
    median = math.exp(mu)
    candidate = _Candidate(
        "lognormal",
        {"median": median, "sigma": sigma},
        {"lognormal": {"median": median, "sigma": sigma}},
        stats().lognorm(sigma, scale=median),
        2,
    )
    high = mu + half
    median_interval = (math.exp(mu - half), math.exp(high) if high < _LOG_MAX else None)
    return candidate, {"median": median_interval, "sigma": _spread_interval(s, n)}


def _normal(x: np.ndarray) -> tuple[_Candidate, dict[str, Interval]] | None:
    mean, std = float(x.mean()), float(x.std())
    if std <= 0:
        return None
    n, s = len(x), float(x.std(ddof=1))
    half = _t(n) * s / math.sqrt(n)
    candidate = _Candidate(
        "normal", {"mean": mean, "std": std}, {"normal": {"mean": mean, "std": std}}, stats().norm(mean, std), 2
    )
    return candidate, {"mean": (mean - half, mean + half), "std": _spread_interval(s, n)}


def _exponential(x: np.ndarray) -> tuple[_Candidate, dict[str, Interval]] | None:
    mean = float(x.mean())
    if mean <= 0:
        return None
    n = len(x)
    total = 2 * n * mean
    interval = (total / _chi2((1 + CONFIDENCE) / 2, 2 * n), total / _chi2((1 - CONFIDENCE) / 2, 2 * n))
    candidate = _Candidate("exponential", {"mean": mean}, {"exponential": {"mean": mean}}, stats().expon(0, mean), 1)
    return candidate, {"mean": interval}


def _uniform(x: np.ndarray) -> tuple[_Candidate, dict[str, Interval]] | None:
    """The bounds are the extremes; the true bound lies beyond an extreme by at most a Beta(1, n) share of the
    width, whose 1 - alpha/2 quantile `q` gives the interval (the width taken as range / (1 - 2q)); a time is
    never negative, so neither is the low bound."""
    low, high = float(x.min()), float(x.max())
    if high <= low:
        return None
    n = len(x)
    q = 1 - ((1 - CONFIDENCE) / 2) ** (1 / n)
    candidate = _Candidate(
        "uniform", {"low": low, "high": high}, {"uniform": [low, high]}, stats().uniform(low, high - low), 2
    )
    if q >= 0.5:  # so few values that the extremes bound nothing
        return candidate, {"low": (0.0, low), "high": (high, None)}
    reach = (high - low) * q / (1 - 2 * q)
    return candidate, {"low": (max(low - reach, 0.0), low), "high": (high, high + reach)}


_FAMILIES: tuple[Callable[[np.ndarray], tuple[_Candidate, dict[str, Interval]] | None], ...] = (
    _lognormal,
    _exponential,
    _normal,
    _uniform,
)


def fit_latency(values: Sequence[float]) -> LatencyFit:
    """The family that fits `values` best (module docstring), a constant, or the values themselves."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("no values to fit")
    if float(x.max() - x.min()) <= CONST_SPREAD_MS:
        value = float(np.median(x))
        return LatencyFit("const", {"value": value}, value, None, None, {})
    fits: list[tuple[float, float, _Candidate, dict[str, Interval]]] = []
    best_p = 0.0
    for family in _FAMILIES:
        fitted = family(x)
        if fitted is None:
            continue
        candidate, intervals = fitted
        p = float(stats().kstest(x, candidate.distribution.cdf).pvalue)
        p = p if math.isfinite(p) else 0.0
        best_p = max(best_p, p)
        if p >= KS_LEVEL:
            aic = 2 * candidate.free - 2 * float(np.sum(candidate.distribution.logpdf(x)))
            fits.append((aic, p, candidate, intervals))
    if not fits:
        kept = sorted(float(v) for v in x)
        return LatencyFit("empirical", {}, {"empirical": kept}, best_p, None, {})
    aic, p, candidate, intervals = min(fits, key=lambda fit: fit[0])
    return LatencyFit(candidate.family, candidate.parameters, candidate.value, p, aic, intervals)


def clopper_pearson(successes: int, trials: int) -> Interval:
    """The exact (Clopper-Pearson) interval of a probability: never narrower than the truth allows, even at 0 or
    all of `trials`, where a normal approximation collapses to a point."""
    if trials <= 0 or not 0 <= successes <= trials:
        raise ValueError(f"{successes} of {trials} is not a binomial count")
    alpha = 1 - CONFIDENCE
    low = 0.0 if successes == 0 else float(stats().beta.ppf(alpha / 2, successes, trials - successes + 1))
    high = 1.0 if successes == trials else float(stats().beta.ppf(1 - alpha / 2, successes + 1, trials - successes))
    return low, high


def exponential_mean_interval(events: int, exposure_ms: float) -> Interval:
    """The exact interval of a constant hazard's mean time (exposure / events) from `events` in `exposure_ms`
    (Poisson counts, chi-square bounds); with no event only a lower bound exists."""
    alpha = 1 - CONFIDENCE
    low = 2 * exposure_ms / _chi2(1 - alpha / 2, 2 * events + 2)
    high = None if events == 0 else 2 * exposure_ms / _chi2(alpha / 2, 2 * events)
    return low, high
