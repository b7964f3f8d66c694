"""Deciding from runs whether a probability is below a bound (docs/verification.md "The statistics").

Each requirement's violations are binomial: k of n independent runs. At each of a fixed list of looks (run counts
10, 20, 40, ... doubling, and the last at `max_runs`) the exact Clopper-Pearson bounds, each one-sided at level
alpha / looks, are compared with the bound: the upper bound below it says the requirement holds, the lower bound
above it says it is violated. One wrong verdict needs one of those one-sided bounds to miss the true probability
at one look, so by Bonferroni the chance of any wrong verdict, however many looks were taken, is at most
alpha = 1 - confidence. Doubling keeps the looks few (alpha is split fewer ways) while costing at most twice the
runs a verdict needed.

Exact bounds need the regularized incomplete beta function; it is computed here by its continued fraction
(numpy and the standard library only, as sim/stats.py) and inverted by bisection to full float precision.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

FIRST_LOOK = 10
MAX_RUNS = 1_000_000
"""Far beyond any verification worth waiting for."""
_TINY = 1e-300


def _continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b) (modified Lentz), converging fast for x < (a + 1) / (a + b + 2)."""
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    fraction = d
    for m in range(1, 10_000):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            fraction *= c * d
        if abs(c * d - 1.0) < 1e-16:
            break
    return fraction


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), for a, b > 0 and x in [0, 1]."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _continued_fraction(b, a, 1.0 - x) / b


def _solve(increasing: bool, target: float, f: Callable[[float], float]) -> float:
    """The p in [0, 1] where the monotone f(p) crosses `target`, by bisection to adjacent floats."""
    low, high = 0.0, 1.0
    for _ in range(200):
        middle = (low + high) / 2
        if middle in (low, high):
            break
        if (f(middle) < target) == increasing:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def upper_bound(k: int, n: int, alpha: float) -> float:
    """The one-sided Clopper-Pearson upper bound at level alpha of the probability behind k of n: the p at which
    seeing k or fewer has probability alpha (1 when k = n; 1 - alpha^(1/n) when k = 0)."""
    if k >= n:
        return 1.0
    # P(X <= k | p) = I_{1-p}(n - k, k + 1), decreasing in p
    return _solve(False, alpha, lambda p: incomplete_beta(n - k, k + 1, 1.0 - p))


def lower_bound(k: int, n: int, alpha: float) -> float:
    """The one-sided Clopper-Pearson lower bound: the p at which seeing k or more has probability alpha (0 when
    k = 0; alpha^(1/n) when k = n)."""
    if k <= 0:
        return 0.0
    # P(X >= k | p) = I_p(k, n - k + 1), increasing in p
    return _solve(True, alpha, lambda p: incomplete_beta(k, n - k + 1, p))


class Verdict(StrEnum):
    HOLDS = "holds"
    VIOLATED = "violated"
    UNDECIDED = "undecided"


@dataclass(frozen=True, slots=True)
class Decision:
    """What k violations of n runs say at one look: the verdict and the interval [low, high] it rests on."""

    verdict: Verdict
    runs: int
    violations: int
    low: float
    high: float


@dataclass(frozen=True)
class Plan:
    """When to look and at which level: `looks` are the run counts at which verdicts are taken."""

    bound: float
    confidence: float
    max_runs: int

    def __post_init__(self) -> None:
        if not 0.0 < self.bound < 1.0:
            raise ValueError(f"the bound must be between 0 and 1 (exclusive), not {self.bound:g}")
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"the confidence must be between 0 and 1 (exclusive), not {self.confidence:g}")
        if not 1 <= self.max_runs <= MAX_RUNS:
            raise ValueError(f"the maximum number of runs must be between 1 and {MAX_RUNS:,}, not {self.max_runs}")

    @cached_property
    def looks(self) -> tuple[int, ...]:
        """FIRST_LOOK, doubling, then `max_runs` (every count at most `max_runs`)."""
        counts = []
        n = FIRST_LOOK
        while n < self.max_runs:
            counts.append(n)
            n *= 2
        return (*counts, self.max_runs)

    @property
    def alpha(self) -> float:
        """The level of each one-sided bound at each look: (1 - confidence) / looks."""
        return (1.0 - self.confidence) / len(self.looks)

    def decide(self, violations: int, runs: int) -> Decision:
        low, high = lower_bound(violations, runs, self.alpha), upper_bound(violations, runs, self.alpha)
        if high < self.bound:
            verdict = Verdict.HOLDS
        elif low > self.bound:
            verdict = Verdict.VIOLATED
        else:
            verdict = Verdict.UNDECIDED
        return Decision(verdict, runs, violations, low, high)

    def runs_to_hold(self) -> int | None:
        """The look at which a requirement never violated holds (None: not within `max_runs`)."""
        return next((n for n in self.looks if self.decide(0, n).verdict is Verdict.HOLDS), None)
