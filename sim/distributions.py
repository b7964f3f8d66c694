"""Latency and failure-time distributions of a scenario, in milliseconds.

Each distribution is a small frozen value parsed from JSON (`parse_distribution`) and sampled only from a
`numpy.random.Generator` the caller owns, so a run is replayed exactly from its seed. Samples are never
negative: a time cannot run backwards.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from sim.schema import ScenarioError, child, closed_object, list_of, number


class Distribution(Protocol):
    """`n` non-negative samples drawn from `rng` (a constant draws nothing)."""

    def sample(self, rng: np.random.Generator, n: int) -> list[float]: ...


@dataclass(frozen=True, slots=True)
class Const:
    value: float

    def sample(self, rng: np.random.Generator, n: int) -> list[float]:
        return [self.value] * n


@dataclass(frozen=True, slots=True)
class Uniform:
    low: float
    high: float

    def sample(self, rng: np.random.Generator, n: int) -> list[float]:
        samples: list[float] = rng.uniform(self.low, self.high, n).tolist()
        return samples


@dataclass(frozen=True, slots=True)
class Exponential:
    mean: float

    def sample(self, rng: np.random.Generator, n: int) -> list[float]:
        samples: list[float] = rng.exponential(self.mean, n).tolist()
        return samples


@dataclass(frozen=True, slots=True)
class LogNormal:
    median: float
    sigma: float

    def sample(self, rng: np.random.Generator, n: int) -> list[float]:
        samples: list[float] = rng.lognormal(math.log(self.median), self.sigma, n).tolist()
        return samples


@dataclass(frozen=True, slots=True)
class Normal:
    """Clipped at 0, so a wide spread puts mass on "instant" rather than on negative times."""

    mean: float
    std: float

    def sample(self, rng: np.random.Generator, n: int) -> list[float]:
        samples: list[float] = np.maximum(rng.normal(self.mean, self.std, n), 0.0).tolist()
        return samples


@dataclass(frozen=True, slots=True)
class Empirical:
    """Resamples observed values, e.g. start times recorded from a live run."""

    values: tuple[float, ...]

    def sample(self, rng: np.random.Generator, n: int) -> list[float]:
        return [self.values[i] for i in rng.integers(0, len(self.values), n).tolist()]


def _const(body: Any, path: str) -> Distribution:
    return Const(number(body, path))


def _uniform(body: Any, path: str) -> Distribution:
    bounds = list_of(body, path)
    if len(bounds) != 2:
        raise ScenarioError(path, "must be [low, high]")
    low = number(bounds[0], child(path, 0))
    high = number(bounds[1], child(path, 1))
    if high < low:
        raise ScenarioError(path, "high must not be below low")
    return Uniform(low, high)


def _exponential(body: Any, path: str) -> Distribution:
    closed_object(body, path, ("mean",), ("mean",))
    return Exponential(number(body["mean"], child(path, "mean"), positive=True))


def _lognormal(body: Any, path: str) -> Distribution:
    closed_object(body, path, ("median", "sigma"), ("median", "sigma"))
    return LogNormal(
        number(body["median"], child(path, "median"), positive=True),
        number(body["sigma"], child(path, "sigma")),
    )


def _normal(body: Any, path: str) -> Distribution:
    closed_object(body, path, ("mean", "std"), ("mean", "std"))
    return Normal(number(body["mean"], child(path, "mean")), number(body["std"], child(path, "std")))


def _empirical(body: Any, path: str) -> Distribution:
    values = list_of(body, path)
    if not values:
        raise ScenarioError(path, "must list at least one value")
    return Empirical(tuple(number(v, child(path, i)) for i, v in enumerate(values)))


_PARSERS: dict[str, Callable[[Any, str], Distribution]] = {
    "const": _const,
    "uniform": _uniform,
    "exponential": _exponential,
    "lognormal": _lognormal,
    "normal": _normal,
    "empirical": _empirical,
}
FAMILIES = tuple(_PARSERS)
"""The distribution families a scenario may name."""


def parse_distribution(value: Any, path: str) -> Distribution:
    """A number (constant ms) or a one-key object naming the family, e.g. `{"exponential": {"mean": 900}}`."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Const(number(value, path))
    if not isinstance(value, Mapping) or len(value) != 1:
        raise ScenarioError(path, f"must be a number or an object with one of: {', '.join(_PARSERS)}")
    ((family, body),) = value.items()
    parser = _PARSERS.get(family)
    if parser is None:
        raise ScenarioError(child(path, str(family)), f"unknown distribution (expected one of: {', '.join(_PARSERS)})")
    return parser(body, child(path, family))
