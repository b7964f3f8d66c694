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
from sim.schema import Problems, child, closed_object, known_keys, object_of, probability
from sim.streams import RandomStreams

DEFAULT = "default"
TIMES = ("start_ms", "ready_ms", "check_ms", "crash_after_ms", "run_ms")
"""A behavior's fields that are distributions of a time in ms."""
PROBABILITIES = ("start_failure", "check_failure")
FIELDS = (*TIMES, *PROBABILITIES)
AGENTS = "agents"
"""The key of a block's per-agent blocks."""
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
    problems = Problems()
    parsed: dict[str, Any] = {}
    for name in TIMES:
        parsed[name] = problems.field(block, path, name, parse_distribution, None)
    for name in PROBABILITIES:
        parsed[name] = problems.field(block, path, name, probability, None)
    problems.raise_any()
    return {name: value for name, value in parsed.items() if name in block}


@dataclass(frozen=True, slots=True)
class _Block:
    fields: dict[str, Any]
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)


_NOTHING = _Block({})
"""A block the scenario does not write."""


def _agent(value: Any, path: str) -> dict[str, Any]:
    return _fields(closed_object(value, path, FIELDS), path)


def _block(value: Any, path: str, agent_ids: Collection[str] | None) -> _Block:
    body = object_of(value, path)
    problems = Problems()
    problems.check(known_keys, body, path, (*FIELDS, AGENTS))
    fields = problems.check(_fields, body, path)
    agents: dict[str, dict[str, Any]] = {}
    agents_path = child(path, AGENTS)
    written: Mapping[str, Any] = problems.field(body, path, AGENTS, object_of, {})
    for agent_id, agent_block in written.items():
        agent_path = child(agents_path, agent_id)
        if agent_ids is not None and agent_id not in agent_ids:
            problems.add(agent_path, "unknown agent")
        agents[agent_id] = problems.check(_agent, agent_block, agent_path) or {}
    problems.raise_any()
    return _Block(fields or {}, agents)


def parse_behaviors(value: Any, path: str, agents_by_manifest: Mapping[str, Collection[str]] | None) -> BehaviorTable:
    """The `behaviors` block, every problem in it at once. Its manifest names and agent ids are checked against
    `agents_by_manifest` (the agents of each manifest), or not at all when that is None: a scenario whose
    manifests are broken reports those, not every behavior that names them."""
    problems = Problems()
    every_agent: Collection[str] | None = None
    if agents_by_manifest is not None:
        every_agent = {a for ids in agents_by_manifest.values() for a in ids}
    blocks: dict[str, _Block] = {}
    for name, block in object_of(value, path).items():
        agent_ids = every_agent
        if agents_by_manifest is not None and name in agents_by_manifest:
            agent_ids = agents_by_manifest[name]
        elif agents_by_manifest is not None and name != DEFAULT:
            problems.add(child(path, name), "unknown manifest (expected default or a manifest name)")
        parsed = problems.check(_block, block, child(path, name), agent_ids)
        if parsed is not None:
            blocks[name] = parsed
    problems.raise_any()
    return BehaviorTable(blocks)


class BehaviorTable:
    """The parsed `behaviors` block (`parse_behaviors`); `resolve` is cached per (manifest, agent) with overrides,
    else per manifest."""

    def __init__(self, blocks: Mapping[str, _Block] | None = None) -> None:
        self._blocks = dict(blocks or {})
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
