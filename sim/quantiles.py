"""A quantile of simulated runs (a median, a p90) with a distribution-free interval from order statistics.

Why order statistics rather than a bootstrap: the number of runs below the true q-quantile is Binomial(n, q)
whatever the distribution, so the interval [x_(l), x_(u)] between two sorted values covers it with a probability
the binomial law gives exactly. A bootstrap of a quantile of few runs only ever returns observed values and is
known to undercover. When n is too small for the wanted confidence on one side (a p90 of 20 runs has no rank
above it with enough mass), that bound is missing rather than made up: "at least x".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from sim.scipy_stats import stats
from sim.stats import CONFIDENCE


@dataclass(frozen=True, slots=True)
class Quantile:
    """The q-quantile of `n` values (the sample's, by the nearest-rank rule) and its interval; a bound is None when
    the values cannot support it at this confidence (and both, with `value`, at no values)."""

    q: float
    n: int
    value: float | None
    low: float | None
    high: float | None


def quantile_interval(values: Sequence[float], q: float, confidence: float = CONFIDENCE) -> Quantile:
    """The nearest-rank q-quantile of `values` and the order-statistic interval around it, each tail holding at
    most (1 - confidence) / 2 of the binomial mass."""
    if not 0 < q < 1:
        raise ValueError("q must be between 0 and 1")
    data = sorted(float(v) for v in values)
    n = len(data)
    if n == 0:
        return Quantile(q, 0, None, None, None)
    value = data[max(math.ceil(q * n), 1) - 1]
    tail = (1 - confidence) / 2
    # P(X_(l) > quantile) = P(Binomial(n, q) <= l - 1): the largest l with that mass at most `tail` (ranks from 1)
    below = int(stats().binom.ppf(tail, n, q))
    if stats().binom.cdf(below, n, q) > tail:
        below -= 1
    low_rank = below + 1
    # P(X_(u) < quantile) = P(Binomial(n, q) >= u): the smallest u with that mass at most `tail`
    high_rank = int(stats().binom.ppf(1 - tail, n, q)) + 1
    low = data[low_rank - 1] if low_rank >= 1 else None
    high = data[high_rank - 1] if high_rank <= n else None
    return Quantile(q, n, value, low, high)
