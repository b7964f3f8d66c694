"""The summary statistics against published values: Student t quantiles, t intervals, Wilson intervals."""

from __future__ import annotations

import pytest

from sim.stats import Estimate, mean_interval, t_quantile, wilson_interval

# Two-sided 95% and 99% critical values of Student's t (any statistics table).
T_975 = {1: 12.7062, 2: 4.3027, 3: 3.1824, 4: 2.7764, 5: 2.5706, 10: 2.2281, 30: 2.0423, 100: 1.9840, 1000: 1.9623}
T_995 = {1: 63.6567, 2: 9.9248, 5: 4.0321, 10: 3.1693, 30: 2.7500}


@pytest.mark.parametrize(("df", "exact"), T_975.items())
def test_t_quantile_975_matches_the_table(df: int, exact: float) -> None:
    # exact for 1 and 2 degrees of freedom; the Cornish-Fisher expansion is within 0.12% at 3, 0.03% at 4
    tolerance = {3: 1.2e-3, 4: 3e-4, 5: 1.2e-4}.get(df, 2.5e-5)
    assert t_quantile(0.975, df) == pytest.approx(exact, rel=tolerance)


@pytest.mark.parametrize(("df", "exact"), T_995.items())
def test_t_quantile_995_matches_the_table(df: int, exact: float) -> None:
    assert t_quantile(0.995, df) == pytest.approx(exact, rel=1e-3)


def test_t_quantile_is_symmetric_and_needs_a_degree_of_freedom() -> None:
    assert t_quantile(0.025, 7) == pytest.approx(-t_quantile(0.975, 7))
    assert t_quantile(0.5, 3) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        t_quantile(0.975, 0)


def test_mean_interval_of_one_to_five() -> None:
    # mean 3, sample sd sqrt(2.5), se 0.70711, t(0.975, 4) = 2.77645: half width 1.96324
    estimate = mean_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    assert estimate.n == 5 and estimate.mean == 3.0
    assert (estimate.low, estimate.high) == (pytest.approx(1.03676, abs=1e-3), pytest.approx(4.96324, abs=1e-3))


def test_mean_interval_of_few_or_constant_values() -> None:
    assert mean_interval([]) == Estimate(0, None, None, None)
    assert mean_interval([4.0]) == Estimate(1, 4.0, None, None)
    assert mean_interval([2.0, 2.0, 2.0]) == Estimate(3, 2.0, 2.0, 2.0)


def test_mean_interval_of_many_values_approaches_the_normal_one() -> None:
    values = [float(i % 10) for i in range(1000)]  # mean 4.5, sd 2.8737
    estimate = mean_interval(values)
    half = 1.96234 * 2.873719 / 1000**0.5
    assert estimate.low == pytest.approx(4.5 - half, rel=1e-5)
    assert estimate.high == pytest.approx(4.5 + half, rel=1e-5)


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
