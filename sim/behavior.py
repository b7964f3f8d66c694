"""How simulated instances behave: the scenario's `behaviors` block and the draws of one instance.

A behavior is looked up by the manifest an instance's spec came from and its agent id, merged in the
order default < default.agents[id] < manifest < manifest.agents[id]. All random draws of an instance are
made once, at placement (`Behavior.fate`), in a fixed number per instance, so a policy change that
reorders what happens when does not change which instance gets which draw.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from sim.distributions import Const, Distribution, parse_distribution
from sim.schema import ScenarioError, child, closed_object, object_of, probability
from sim.streams import RandomStreams

DEFAULT = "default"
_TIMES = ("start_ms", "ready_ms", "check_ms", "crash_after_ms", "run_ms")
_PROBABILITIES = ("start_failure", "check_failure")
_FIELDS = (*_TIMES, *_PROBABILITIES)
NEVER = math.inf
INSTANT = Const(0.0)


@dataclass(frozen=True, slots=True)
class Fate:
    """Everything random about one instance; tuple entries are per run (the first start and each restart).
    A large run keeps one per running instance, so a constant's draws are one tuple that all share."""

    start_ms: tuple[float, ...]
    ready_ms: tuple[float, ...]
    check_ms: tuple[float, ...]
    start_fails: tuple[bool, ...]
    crash_after_ms: tuple[float, ...]
    checks_fail: bool
    run_ms: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Behavior:
    """Resolved behavior; all times are distributions in ms. `crash_after_ms=None` never crashes;
    `run_ms=None` runs until stopped, else the agent exits 0 after running that long (a batch agent
    completes; a service agent's exit is a crash like any other)."""

    start_ms: Distribution = INSTANT
    ready_ms: Distribution = INSTANT
    check_ms: Distribution = INSTANT
    start_failure: float = 0.0
    crash_after_ms: Distribution | None = None
    check_failure: float = 0.0
    run_ms: Distribution | None = None

    def fate(self, streams: RandomStreams, runs: int) -> Fate:
        """Draw `runs` runs' worth of latencies and failures. The failure coins are drawn even at
        probability 0, so changing a probability moves no other instance's draws."""
        latency, failure = streams.latency, streams.failure
        coins = failure.random(runs + 1).tolist()
        crashes = _draws(self.crash_after_ms, failure, runs) if self.crash_after_ms else _constant(NEVER, runs)
        exits = _draws(self.run_ms, latency, runs) if self.run_ms else _constant(NEVER, runs)
        return Fate(
            start_ms=_draws(self.start_ms, latency, runs),
            ready_ms=_draws(self.ready_ms, latency, runs),
            check_ms=_draws(self.check_ms, latency, runs),
            start_fails=tuple([c < self.start_failure for c in coins[:runs]]),
            crash_after_ms=crashes,
            checks_fail=coins[runs] < self.check_failure,
            run_ms=exits,
        )


def _draws(distribution: Distribution, rng: np.random.Generator, runs: int) -> tuple[float, ...]:
    """`runs` draws; a constant draws nothing from `rng`, and its tuple is shared."""
    if isinstance(distribution, Const):
        return _constant(distribution.value, runs)
    return tuple(distribution.sample(rng, runs))


@lru_cache(maxsize=64)
def _constant(value: float, runs: int) -> tuple[float, ...]:
    return (value,) * runs


def _fields(block: Mapping[str, Any], path: str) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    for name in _TIMES:
        if name in block:
            parsed[name] = parse_distribution(block[name], child(path, name))
    for name in _PROBABILITIES:
        if name in block:
            parsed[name] = probability(block[name], child(path, name))
    return parsed


@dataclass(frozen=True, slots=True)
class _Block:
    fields: dict[str, Any]
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)


_NOTHING = _Block({})
"""A block the scenario does not write."""


def _block(value: Any, path: str, agent_ids: Collection[str]) -> _Block:
    body = closed_object(value, path, (*_FIELDS, "agents"))
    agents: dict[str, dict[str, Any]] = {}
    agents_path = child(path, "agents")
    for agent_id, agent_block in object_of(body.get("agents", {}), agents_path).items():
        agent_path = child(agents_path, agent_id)
        if agent_id not in agent_ids:
            raise ScenarioError(agent_path, "unknown agent")
        agents[agent_id] = _fields(closed_object(agent_block, agent_path, _FIELDS), agent_path)
    return _Block(_fields(body, path), agents)


class BehaviorTable:
    """The parsed `behaviors` block; `resolve` is cached per (manifest, agent) with overrides, else per manifest."""

    def __init__(self, value: Any, agents_by_manifest: Mapping[str, Collection[str]]) -> None:
        path = "$.behaviors"
        every_agent = {a for agents in agents_by_manifest.values() for a in agents}
        self._blocks: dict[str, _Block] = {}
        for name, block in object_of(value, path).items():
            if name != DEFAULT and name not in agents_by_manifest:
                raise ScenarioError(child(path, name), "unknown manifest (expected default or a manifest name)")
            agent_ids = every_agent if name == DEFAULT else agents_by_manifest[name]
            self._blocks[name] = _block(block, child(path, name), agent_ids)
        self._cache: dict[tuple[str | None, str | None], Behavior] = {}

    def resolve(self, manifest_name: str | None, agent_id: str) -> Behavior:
        default = self._blocks.get(DEFAULT, _NOTHING)
        own = self._blocks.get(manifest_name or DEFAULT, _NOTHING)
        specific = agent_id in default.agents or agent_id in own.agents
        key = (manifest_name, agent_id if specific else None)
        behavior = self._cache.get(key)
        if behavior is None:
            layers = (default.fields, default.agents.get(agent_id, {}), own.fields, own.agents.get(agent_id, {}))
            behavior = self._cache[key] = Behavior(**{k: v for layer in layers for k, v in layer.items()})
        return behavior
