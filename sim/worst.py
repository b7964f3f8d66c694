"""Worst-case search (docs/verification.md "Worst case"): adversarial timings within the behaviors' supports.

Sampling seeds finds what is likely; a requirement can still break on a schedule that is possible but rare: every
start at its latest, every attempt of a coin failing, a crash just after the healthy verdict. Each behavior field a
scenario writes is a *knob* with a few adversarial values inside its distribution's support: a time's smallest and
largest value (an unbounded support is cut at its 0.1% and 99.9% quantiles), a crash time also just after the
healthy verdict (ready + checks + `min_healthy_ms` + 1 ms, when the support holds it) and halfway through each
pause of a progressive step that verdict may start (a failure during a pause), a probability strictly
between 0 and 1 both 0 and 1 (every coin landing one way is possible). A *schedule* pins every knob to one of its
values, written as `--set` assignments of constants, so any schedule replays with `mn-deploy sim run`. Every
schedule is tried when there are at most `limit`; else the all-earliest and all-latest ones and a random sample
(seeded, so the search repeats). It is a search, not a proof: finding none does not show that none exists.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Iterator, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import ExitStack, closing
from dataclasses import dataclass
from itertools import product
from statistics import NormalDist
from typing import Any

import numpy as np

from mn_deploy_core.manifest import load_manifest
from sim.behavior import PROBABILITIES, TIMES, Behavior
from sim.distributions import (
    Const,
    Distribution,
    Empirical,
    Exponential,
    LogNormal,
    Normal,
    Uniform,
    parse_distribution,
)
from sim.fanout import completions
from sim.overrides import with_overrides
from sim.reproduce import reproduce_command
from sim.requirements import Requirement
from sim.scenario import Scenario, load_scenario
from sim.sweep import default_workers, ignore_interrupts
from sim.verification import check_run, json_value

LIMIT = 256
TAIL = 0.001
"""Where an unbounded support is cut: its 0.1% and 99.9% quantiles."""
_Z = NormalDist().inv_cdf(1 - TAIL)
_CRASH = "crash_after_ms"
_SEED = 0


def support(distribution: Distribution) -> tuple[float, float]:
    """The smallest and largest value a distribution draws (unbounded ones cut at their TAIL quantiles)."""
    match distribution:
        case Const(value):
            return value, value
        case Uniform(low, high):
            return low, high
        case Empirical(values):
            return min(values), max(values)
        case Exponential(mean):
            return -mean * math.log1p(-TAIL), -mean * math.log(TAIL)
        case LogNormal(median, sigma):
            return median * math.exp(-_Z * sigma), median * math.exp(_Z * sigma)
        case Normal(mean, std):
            return max(0.0, mean - _Z * std), max(0.0, mean + _Z * std)
    raise TypeError(f"no support for {distribution!r}")


@dataclass(frozen=True, slots=True)
class Knob:
    """One behavior field the scenario writes (`behaviors.v2.start_ms`), and the values a schedule may pin it to."""

    path: str
    values: tuple[float, ...]


def _healthy_after(behavior: Behavior, min_healthy_ms: float) -> set[float]:
    """Running time until the healthy verdict, with ready and checks both at their earliest or both at their
    latest, plus 1 ms: a crash then comes just after the verdict."""
    ready, checks = support(behavior.ready_ms), support(behavior.check_ms)
    return {ready[end] + checks[end] + min_healthy_ms + 1.0 for end in (0, 1)}


def _block_knobs(
    block: Mapping[str, Any], path: str, behavior: Behavior, min_healthy_ms: float, pauses: Collection[int]
) -> Iterator[Knob]:
    """The knobs of one block, whose merged behavior (default < manifest < agent) is `behavior`; `pauses` are the
    step pauses (ms) of the manifests it may run: a crash halfway through one fails an instance while its step waits."""
    for name in TIMES:
        if name in block:
            low, high = support(parse_distribution(block[name], f"{path}.{name}"))
            values = {low, high}
            if name == _CRASH:
                verdicts = _healthy_after(behavior, min_healthy_ms)
                moments = verdicts | {v + pause / 2 for v in verdicts for pause in pauses}
                values |= {v for v in moments if low <= v <= high}
            yield Knob(f"{path}.{name}", tuple(sorted(values)))
    for name in PROBABILITIES:
        if name in block and 0.0 < block[name] < 1.0:
            yield Knob(f"{path}.{name}", (0.0, 1.0))


def _step_pauses(scenario: Scenario, names: Sequence[str]) -> set[int]:
    """The `pause_ms` of every progressive step the named manifests are deployed with, a deploy's overrides
    included (they often bring the steps)."""
    policies = [scenario.manifests[name].policy for name in names]
    for action in scenario.actions:
        if action.verb == "deploy" and action.target in names and action.options.get("overrides"):
            document = scenario.documents[action.target]
            policies.append(load_manifest(document, action.options["overrides"]).policy)
    return {step.pause_ms for policy in policies for step in policy.steps if step.pause_ms}


def knobs(document: Mapping[str, Any]) -> list[Knob]:
    """Every knob of a scenario document (agents whose id holds a dot cannot be addressed, so are left as drawn)."""
    scenario = load_scenario(document)
    found: list[Knob] = []
    for name, block in document.get("behaviors", {}).items():
        manifest = scenario.manifests.get(name)
        # the default block's crash may hit any manifest: the longest min_healthy_ms is the latest verdict
        runs = [manifest] if manifest else list(scenario.manifests.values())
        min_healthy = max(m.policy.min_healthy_ms for m in runs)
        pauses = _step_pauses(scenario, [name] if manifest else list(scenario.manifests))
        own = None if manifest is None else name
        path = f"behaviors.{name}"
        found += _block_knobs(block, path, scenario.behaviors.resolve(own, ""), min_healthy, pauses)
        for agent, agent_block in block.get("agents", {}).items():
            if "." not in agent:
                behavior = scenario.behaviors.resolve(own, agent)
                found += _block_knobs(agent_block, f"{path}.agents.{agent}", behavior, min_healthy, pauses)
    return [knob for knob in found if len(knob.values) > 1]


def schedules(found: Sequence[Knob], limit: int = LIMIT) -> tuple[list[dict[str, float]], int]:
    """The schedules to try and how many there are in all."""
    total = math.prod(len(k.values) for k in found)
    if total <= limit:
        return [
            dict(zip((k.path for k in found), values, strict=True)) for values in product(*(k.values for k in found))
        ], total
    rng = np.random.default_rng(_SEED)
    tried = [{k.path: k.values[0] for k in found}, {k.path: k.values[-1] for k in found}]
    seen = {tuple(s.values()) for s in tried}
    while len(tried) < limit:
        schedule = {k.path: k.values[int(rng.integers(len(k.values)))] for k in found}
        if tuple(schedule.values()) not in seen:
            seen.add(tuple(schedule.values()))
            tried.append(schedule)
    return tried, total


@dataclass(frozen=True, slots=True)
class Counterexample:
    """A schedule that violates a requirement: its `--set` assignments, what it measured, how to replay it."""

    schedule: Mapping[str, float]
    requirement: Requirement
    value: Any
    error: str | None
    reproduce: str


@dataclass(frozen=True, slots=True)
class WorstCase:
    tried: int
    schedules: int
    """How many schedules the knobs make in all (tried all when equal to `tried`)."""
    knobs: tuple[Knob, ...]
    counterexamples: tuple[Counterexample, ...]
    """Per requirement that some schedule violates, in the requirements' order: the first such schedule."""

    def to_json(self) -> dict[str, Any]:
        return {
            "tried": self.tried,
            "schedules": self.schedules,
            "knobs": {k.path: list(k.values) for k in self.knobs},
            "counterexamples": [
                {
                    "requirement": str(found.requirement),
                    "schedule": dict(found.schedule),
                    "value": json_value(found.value),
                    "error": found.error,
                    "reproduce": found.reproduce,
                }
                for found in self.counterexamples
            ],
        }


def search_worst(
    document: Mapping[str, Any],
    requirements: Sequence[Requirement],
    *,
    file: str,
    overrides: Mapping[str, Any] | None = None,
    limit: int = LIMIT,
    workers: int | None = None,
    executor: Executor | None = None,
) -> WorstCase:
    """Try the adversarial schedules of `document` (with `overrides` already applied) and find, for each
    requirement, the first schedule in order that violates it. Runs use the scenario's seed; a schedule pins what
    it can, and what it cannot (unwritten fields, agents with dots) is drawn from that seed, so its replay command
    is exact."""
    found = knobs(document)
    tried, total = schedules(found, limit)
    seed = load_scenario(document).seed
    judged = tuple(requirements)
    workers = workers or default_workers()
    calls = ((json.dumps(with_overrides(document, s)), seed, judged) for s in tried)
    with ExitStack() as stack:
        if executor is None:
            executor = stack.enter_context(ProcessPoolExecutor(workers, initializer=ignore_interrupts))
        checks = dict(stack.enter_context(closing(completions(executor, check_run, calls, 2 * workers))))
    first: dict[int, Counterexample] = {}
    for index, schedule in enumerate(tried):
        check = checks[index]
        for i, (requirement, met, value) in enumerate(zip(judged, check.met, check.values, strict=True)):
            if not met and i not in first:
                replay = reproduce_command(file, seed, {**(overrides or {}), **schedule})
                first[i] = Counterexample(schedule, requirement, value, check.error, replay)
    return WorstCase(len(tried), total, tuple(found), tuple(first[i] for i in sorted(first)))
