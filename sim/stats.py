"""Confidence intervals for sweep summaries, with numpy and the standard library only (no scipy).

A mean gets a percentile bootstrap interval: the middle 95% of the means of `RESAMPLES` resamples of the
values, drawn with replacement. It assumes no normal distribution of the mean, which a measure that is mostly
zero with a few large values (`exposure_ms`) is far from: a t interval of such a measure goes below zero,
while every resample mean lies between the smallest and the largest value, so the interval stays within
the measure's range (never below 0 for a non-negative one). The resamples come from a fixed seed and are
drawn over the values sorted, so the same values give the same interval in whatever order the runs came in.

A share gets a Wilson score interval, which stays inside [0, 1] and is sensible at 0 or n successes, where
the normal approximation collapses to a point.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist
from typing import Any

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 2_000
SEED = 0


def interval_methods() -> dict[str, Any]:
    """How `mean_interval` and `wilson_interval` work, for the summary JSON."""
    return {
        "confidence": CONFIDENCE,
        "metrics": {"method": "percentile bootstrap of the mean", "resamples": RESAMPLES, "seed": SEED},
        "outcomes": {"method": "Wilson score"},
    }


DESCRIPTION = (
    f"{CONFIDENCE:.0%} percentile bootstrap of the mean ({RESAMPLES:,} resamples, bootstrap seed {SEED}); "
    f"shares: {CONFIDENCE:.0%} Wilson score"
)
"""`interval_methods()` in one line, for people."""


@dataclass(frozen=True, slots=True)
class Estimate:
    """A mean over `n` values with its interval; `low`/`high` are missing below two values, `mean` at none."""

    n: int
    mean: float | None
    low: float | None
    high: float | None


@lru_cache(maxsize=8)
def _resamples(n: int) -> np.ndarray:
    """Indices of `RESAMPLES` resamples of `n` values. They depend on `n` alone, and drawing them costs ten
    times what using them does, so the points and measures of a sweep with the same `n` share one draw."""
    indices = np.random.default_rng(SEED).integers(0, n, size=(RESAMPLES, n))
    indices.flags.writeable = False
    return indices


def mean_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Estimate:
    """The mean of `values` and its percentile bootstrap interval."""
    n = len(values)
    if n == 0:
        return Estimate(0, None, None, None)
    data = np.sort(np.asarray(values, dtype=float))
    first = float(data[0])
    if n == 1:
        return Estimate(1, first, None, None)
    if first == data[-1]:  # all equal: the value itself, which a sum of n copies can miss by an ulp
        return Estimate(n, first, first, first)
    tail = (1 - confidence) / 2
    low, high = np.quantile(data[_resamples(n)].mean(axis=1), [tail, 1 - tail])
    return Estimate(n, float(data.mean()), float(low), float(high))


@dataclass(frozen=True, slots=True)
class Share:
    """`count` of `n` runs, their share and its Wilson interval (all 0 when n is 0)."""

    count: int
    n: int
    share: float
    low: float
    high: float


def wilson_interval(count: int, n: int, confidence: float = CONFIDENCE) -> Share:
    if n == 0:
        return Share(0, 0, 0.0, 0.0, 0.0)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = count / n
    scale = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / scale
    half = z / scale * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low = 0.0 if count == 0 else centre - half  # exact bounds at the ends, not 1e-17 off by rounding
    high = 1.0 if count == n else centre + half
    return Share(count, n, p, low, high)
