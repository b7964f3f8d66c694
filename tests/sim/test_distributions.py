"""Distributions: parsed from JSON with the path of any problem, sampled only from the given generator."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from sim.distributions import Const, Empirical, Exponential, LogNormal, Normal, Uniform, parse_distribution
from sim.schema import ScenarioError
from sim.streams import RandomStreams


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (250, Const(250.0)),
        ({"const": 7}, Const(7.0)),
        ({"uniform": [1, 3]}, Uniform(1.0, 3.0)),
        ({"exponential": {"mean": 900}}, Exponential(900.0)),
        ({"lognormal": {"median": 1500, "sigma": 0.4}}, LogNormal(1500.0, 0.4)),
        ({"normal": {"mean": 10, "std": 50}}, Normal(10.0, 50.0)),
        ({"empirical": [5, 9]}, Empirical((5.0, 9.0))),
    ],
)
def test_each_family_parses(value: Any, expected: Any) -> None:
    assert parse_distribution(value, "$.d") == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-1, "$.d: must be at least 0"),
        (True, "$.d: must be a number or an object with one of: const, uniform, exponential, lognormal"),
        ({"gamma": {"k": 2}}, "$.d.gamma: unknown distribution"),
        ({"uniform": [3, 1]}, "$.d.uniform: high must not be below low"),
        ({"uniform": [1]}, "$.d.uniform: must be [low, high]"),
        ({"exponential": {"mean": 0}}, "$.d.exponential.mean: must be greater than 0"),
        ({"exponential": {"mean": 5, "rate": 1}}, "$.d.exponential.rate: unknown key"),
        ({"lognormal": {"median": 100}}, "$.d.lognormal.sigma: is required"),
        ({"normal": {"mean": 1, "std": "wide"}}, "$.d.normal.std: must be a finite number"),
        ({"empirical": []}, "$.d.empirical: must list at least one value"),
        ({"empirical": [1, -2]}, "$.d.empirical[1]: must be at least 0"),
        ({"const": 1, "uniform": [0, 1]}, "$.d: must be a number or an object with one of"),
    ],
)
def test_bad_distributions_name_their_path(value: Any, message: str) -> None:
    with pytest.raises(ScenarioError) as raised:
        parse_distribution(value, "$.d")
    assert str(raised.value).startswith(message)


def test_samples_come_only_from_the_given_generator() -> None:
    dist = parse_distribution({"lognormal": {"median": 1500, "sigma": 0.4}}, "$.d")
    first = dist.sample(np.random.default_rng(5), 4)
    again = dist.sample(np.random.default_rng(5), 4)
    other = dist.sample(np.random.default_rng(6), 4)
    assert first == again != other


def test_normal_is_clipped_at_zero_and_empirical_resamples_its_values() -> None:
    rng = np.random.default_rng(1)
    assert min(Normal(0.0, 100.0).sample(rng, 500)) == 0.0
    assert set(Empirical((5.0, 9.0)).sample(rng, 50)) == {5.0, 9.0}


def test_a_constant_draws_nothing() -> None:
    rng = np.random.default_rng(3)
    before = rng.bit_generator.state
    assert Const(4.0).sample(rng, 3) == [4.0, 4.0, 4.0]
    assert rng.bit_generator.state == before


def test_latency_and_failure_streams_are_independent() -> None:
    """Drawing more latencies must not change the failure draws (common random numbers)."""
    quiet, busy = RandomStreams.from_seed(11), RandomStreams.from_seed(11)
    busy.latency.random(1000)
    assert quiet.failure.random(5).tolist() == busy.failure.random(5).tolist()
    assert RandomStreams.from_seed(11).latency.random() != RandomStreams.from_seed(11).failure.random()
