"""The summary statistics: the bootstrap interval of a mean against its exact value, its bounds whatever the
values (fuzzed with hypothesis), and Wilson intervals against published values."""

from __future__ import annotations

import random
from collections import Counter
from fractions import Fraction
from itertools import product

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.stats import Estimate, mean_interval, wilson_interval


def exact_bootstrap_interval(values: list[int]) -> tuple[float, float]:
    """The 2.5% and 97.5% quantiles of the mean over all n**n resamples, enumerated: no random draw at all."""
    n = len(values)
    means = Counter(Fraction(sum(values[i] for i in picks), n) for picks in product(range(n), repeat=n))
    cumulative, quantiles = 0, {}
    for mean in sorted(means):
        cumulative += means[mean]
        for q in (Fraction(1, 40), Fraction(39, 40)):
            if q not in quantiles and cumulative >= q * n**n:
                quantiles[q] = float(mean)
    return quantiles[Fraction(1, 40)], quantiles[Fraction(39, 40)]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0, 0, 0, 10], (0.0, 7.5)),  # mostly zero, as exposure_ms is: its t interval is [-5.5, 10.5]
        ([0, 0, 0, 0, 7], (0.0, 4.2)),
        ([7, 7, 8, 9, 9], (7.2, 8.8)),
    ],
)
def test_mean_interval_of_a_tiny_sample_is_its_exact_bootstrap_interval(
    values: list[int], expected: tuple[float, float]
) -> None:
    # each quantile falls well inside one atom of the exact distribution, so 2,000 resamples find it exactly
    assert exact_bootstrap_interval(values) == expected
    estimate = mean_interval([float(v) for v in values])
    assert estimate.n == len(values) and estimate.mean == sum(values) / len(values)
    assert (estimate.low, estimate.high) == pytest.approx(expected, abs=1e-12)


def test_mean_interval_of_many_values_approaches_the_normal_one() -> None:
    values = [float(i % 10) for i in range(1000)]  # mean 4.5, sd 2.8723 (ddof 0)
    estimate = mean_interval(values)
    half = 1.959964 * 2.872281 / 1000**0.5
    # the quantiles of 2,000 resample means are off by about 0.006 here
    assert estimate.low == pytest.approx(4.5 - half, abs=0.03)
    assert estimate.high == pytest.approx(4.5 + half, abs=0.03)


def test_mean_interval_of_few_or_constant_values() -> None:
    assert mean_interval([]) == Estimate(0, None, None, None)
    assert mean_interval([4.0]) == Estimate(1, 4.0, None, None)
    assert mean_interval([2.0, 2.0, 2.0]) == Estimate(3, 2.0, 2.0, 2.0)
    assert mean_interval([0.1] * 3) == Estimate(3, 0.1, 0.1, 0.1)  # summing gives 0.10000000000000002
    assert mean_interval([0.0] * 200) == Estimate(200, 0.0, 0.0, 0.0)


values = st.floats(min_value=0, max_value=1e15)
zero_heavy = st.builds(
    lambda zeros, large: [0.0] * zeros + large, st.integers(1, 300), st.lists(values, min_size=1, max_size=3)
)
non_negative = st.lists(values, min_size=2, max_size=300) | zero_heavy


def within_range(low: float, high: float, values: list[float]) -> bool:
    """Between the smallest and the largest value, up to the rounding of a sum (the mean of three 0.95 is
    0.9499999999999998)."""
    slack = 1e-14 * max(abs(v) for v in values)
    return min(values) - slack <= low and high <= max(values) + slack


@settings(max_examples=500, deadline=None)
@given(values=non_negative)
def test_the_interval_of_a_non_negative_measure_never_goes_below_zero(values: list[float]) -> None:
    estimate = mean_interval(values)
    assert estimate.n == len(values) and estimate.mean is not None
    assert estimate.low is not None and estimate.high is not None
    assert 0 <= estimate.low <= estimate.mean <= estimate.high
    assert within_range(estimate.low, estimate.high, values)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.floats(min_value=-1e15, max_value=1e15), min_size=2, max_size=300))
def test_the_interval_holds_the_mean_within_the_range_of_the_values(values: list[float]) -> None:
    estimate = mean_interval(values)
    assert estimate.low is not None and estimate.mean is not None and estimate.high is not None
    assert estimate.low <= estimate.mean <= estimate.high
    assert within_range(estimate.low, estimate.high, values)


@settings(max_examples=200, deadline=None)
@given(values=non_negative, order=st.randoms(use_true_random=False))
def test_the_same_values_in_any_order_give_the_same_interval(values: list[float], order: random.Random) -> None:
    shuffled = list(values)
    order.shuffle(shuffled)
    assert mean_interval(shuffled) == mean_interval(values)


@pytest.mark.parametrize(
    ("count", "n", "low", "high"),
    [
        (5, 10, 0.236593, 0.763407),
        (0, 10, 0.0, 0.277533),
        (10, 10, 0.722467, 1.0),
        (1, 8, 0.022417, 0.470888),
        (81, 263, 0.255293, 0.366212),  # Newcombe (1998), Table I: 0.2553 to 0.3662
    ],
)
def test_wilson_interval_matches_published_values(count: int, n: int, low: float, high: float) -> None:
    share = wilson_interval(count, n)
    assert (share.count, share.n, share.share) == (count, n, count / n)
    assert (share.low, share.high) == (pytest.approx(low, abs=1e-5), pytest.approx(high, abs=1e-5))


def test_wilson_interval_ends_exactly_at_zero_and_one_and_handles_no_runs() -> None:
    assert wilson_interval(0, 3).low == 0.0 and wilson_interval(3, 3).high == 1.0
    assert wilson_interval(0, 0).n == 0
