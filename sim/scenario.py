"""A scenario file (docs/scenarios.md): loaded and validated whole, then run with a seed into a `Result`.

The run wires the real `Controller` to a memory store and registry and to the simulated world; the
simulator adds no rollout rule of its own. Everything random comes from the seed, so the same file and
seed give the same result, byte for byte.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import reduce
from pathlib import Path
from typing import Any

import simpy

from backends.memory import MemoryRecorder, MemoryRegistry, MemoryStore
from mn_deploy_core.controller import Controller
from mn_deploy_core.errors import InvalidManifestError
from mn_deploy_core.manifest import Manifest, load_manifest
from mn_deploy_core.policy import unknown_keys
from mn_deploy_core.records import DeploymentRecord
from sim.actions import Action, Operator, parse_action
from sim.behavior import DEFAULT, BehaviorTable, parse_behaviors
from sim.jsonfile import read_json
from sim.manifest_files import inline_manifest_files
from sim.provenance import Provenance
from sim.requirements import Requirement, requirements_at
from sim.result import Result, collect
from sim.schema import (
    SCHEMA_KEY,
    Problems,
    ScenarioError,
    child,
    known_keys,
    list_of,
    natural,
    number_or_null,
    object_of,
    text,
)
from sim.streams import RandomStreams
from sim.world import Driver, SimRuntime

PLAIN: Mapping[str, Callable[[Any, str], Any]] = {
    "name": text,
    "description": text,
    "seed": natural,
    "until_ms": number_or_null,
}
"""The scenario's plain fields and their checkers (whose `KINDS` the published schema gives)."""
KEYS = (SCHEMA_KEY, *PLAIN, "manifests", "behaviors", "actions", "requirements")
"""Every key a scenario file may hold (`$schema` only points an editor at the published schema)."""
REQUIRED = ("name", "manifests", "actions")


@dataclass(frozen=True, slots=True)
class Scenario:
    """A validated scenario; `documents` are the manifests as written, `manifests` as the core loads them."""

    name: str
    description: str | None
    seed: int
    until_ms: float | None
    documents: Mapping[str, Mapping[str, Any]]
    manifests: Mapping[str, Manifest]
    behaviors: BehaviorTable
    actions: tuple[Action, ...]
    warnings: tuple[str, ...] = ()
    """One line each: policy keys the manifest format does not know (they change nothing, so likely typos)."""
    requirements: tuple[Requirement, ...] = ()
    """What every run should meet, checked by `sim verify` (docs/verification.md)."""


def _manifest(document: Any, path: str, overrides: Mapping[str, Any] | None = None, key: str | None = None) -> Manifest:
    try:
        return load_manifest(document, overrides, key)
    except InvalidManifestError as error:
        raise ScenarioError(path, error.message) from None


def _manifests(value: Any, path: str) -> dict[str, Manifest]:
    """Every manifest, each checked by the core (one problem per manifest: the core reports its first)."""
    documents = object_of(value, path)
    if not documents:
        raise ScenarioError(path, "must name at least one manifest")
    problems = Problems()
    if DEFAULT in documents:
        problems.add(child(path, DEFAULT), f'"{DEFAULT}" is reserved for behaviors')
    manifests = {name: problems.check(_manifest, doc, child(path, name)) for name, doc in documents.items()}
    problems.raise_any()
    return {name: manifest for name, manifest in manifests.items() if manifest is not None}


def _actions(
    value: Any, path: str, documents: Mapping[str, Any], manifests: Mapping[str, Manifest] | None
) -> tuple[Action, ...]:
    """The actions in time order; deploys' names and overrides are checked against `manifests` unless None."""
    agent_ids = None if manifests is None else {a for m in manifests.values() for a in m.agents}
    problems = Problems()
    actions = []
    for i, raw in enumerate(list_of(value, path)):
        action = problems.check(parse_action, raw, child(path, i), manifests, agent_ids)
        if action is None:
            continue
        if manifests is not None and action.verb == "deploy" and action.options:
            overrides, key = action.options.get("overrides"), action.options.get("key")
            where = child(child(path, i), "overrides" if overrides else "key")
            problems.check(_manifest, documents[action.target], where, overrides, key)
        actions.append(action)
    problems.raise_any()
    return tuple(sorted(actions, key=lambda a: a.at_ms))


def _policy_warnings(documents: Mapping[str, Any]) -> tuple[str, ...]:
    warnings = []
    for name, document in documents.items():
        for parts in unknown_keys(document.get("policies")):
            path = reduce(child, parts, child(child("$.manifests", name), "policies"))
            warnings.append(f"{path}: unknown policy key, ignored")
    return tuple(warnings)


def load_scenario(document: Any, base: Path = Path()) -> Scenario:
    """Validate a parsed scenario; raises ScenarioError with every problem found, each naming its JSONPath.
    Manifests given by path are read relative to `base` (a file's are by `read_scenario_document`, relative to
    the file). Behaviors and actions are checked against the manifests only when all of those are valid, so one
    broken manifest is one problem, not one more per action that deploys it."""
    body = object_of(inline_manifest_files(document, base), "$")
    problems = Problems()
    problems.check(known_keys, body, "$", KEYS, REQUIRED)
    manifests = problems.check(_manifests, body["manifests"], "$.manifests") if "manifests" in body else None
    documents = {name: body["manifests"][name] for name in manifests or {}}
    agents = None if manifests is None else {n: tuple(m.agents) for n, m in manifests.items()}
    plain = {key: problems.field(body, "$", key, check, None) for key, check in PLAIN.items()}
    scenario = Scenario(
        name=plain.get("name") or "",
        description=plain.get("description"),
        seed=plain.get("seed") or 0,
        until_ms=plain.get("until_ms"),
        documents=documents,
        manifests=manifests or {},
        behaviors=problems.field(body, "$", "behaviors", lambda v, p: parse_behaviors(v, p, agents), BehaviorTable()),
        actions=problems.field(body, "$", "actions", lambda v, p: _actions(v, p, documents, manifests), ()),
        warnings=_policy_warnings(documents),
        requirements=problems.field(body, "$", "requirements", requirements_at, ()),
    )
    problems.raise_any()
    return scenario


def read_scenario_document(path: str | Path) -> Any:
    """A scenario file's JSON with its manifests given by path read in (relative to the file's directory), for
    whoever changes the document before loading it (`--set`, sweeps); ScenarioError when a file cannot be read."""
    return inline_manifest_files(read_json(path), Path(path).parent)


def read_scenario(path: str | Path) -> Scenario:
    """Load a scenario file; unreadable files and bad JSON are ScenarioErrors too."""
    return load_scenario(read_scenario_document(path))


LARGE_RUN = 10_000
"""Instances from which `run_scenario` collects the finished simulation at once. A simulation is held together
by reference cycles (SimPy's environment, the controller's timers), so only the cyclic collector frees it, which
runs late: a sweep worker carried one large run's whole heap through the next, twice the peak memory. Below this,
a collection would cost more than the run."""


class Simulation:
    """One run of a scenario, wired and ready: the real controller on a memory store and registry, the
    simulated world, the operator. `run()` drives it to the end; `env` and `controller` stay inspectable.
    With `record`, the controller's inputs are kept for `trace()` (docs/traces.md); without, they cost nothing."""

    def __init__(
        self, scenario: Scenario, seed: int | None = None, until_ms: float | None = None, *, record: bool = False
    ) -> None:
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else seed
        horizon = scenario.until_ms if until_ms is None else until_ms
        self.env = env = simpy.Environment(initial_time=0.0)
        self._provenance = Provenance(scenario.manifests)
        self._runtime = SimRuntime(
            env, RandomStreams.from_seed(self.seed), self._provenance.of_placement, scenario.behaviors.resolve
        )
        self._store = MemoryStore()
        self._recorder = MemoryRecorder() if record else None
        self.controller = Controller(self._store, self._runtime, MemoryRegistry(), self._recorder)
        driver = Driver(env, self.controller, self._runtime)
        self._operator = Operator(driver, self.controller, scenario.documents, self._deployed)
        self._operator.start(scenario.actions, self._runtime.crash)
        self.end = driver.finished if horizon is None else env.any_of([driver.finished, env.timeout(horizon)])

    def _deployed(self, action: Action, record: DeploymentRecord) -> None:
        self._provenance.deployed(record.deployment_key, record.target_version or "", action.target)

    def run(self) -> Result:
        """Run to the end. The cyclic garbage collector is paused meanwhile: a run allocates millions of
        short-lived objects, and its full passes over a large heap cost a quarter of a 10,000-agent run."""
        collecting = gc.isenabled()
        gc.disable()
        try:
            self.env.run(until=self.end)
            return self.result()
        finally:
            if collecting:
                gc.enable()

    def result(self) -> Result:
        """What happened up to now (the end, once `run` returned)."""
        return collect(
            self.scenario.name,
            self.seed,
            self.env.now,
            self._store,
            self._runtime,
            self._provenance,
            self._operator.errors,
        )

    def trace(self) -> dict[str, Any]:
        """The run so far as a trace, the same format a live controller exports."""
        if self._recorder is None:
            raise ValueError("this simulation was not recording: make it with record=True")
        return self._recorder.trace(self._store)


def run_scenario(scenario: Scenario, seed: int | None = None, until_ms: float | None = None) -> Result:
    """Run `scenario` to its end; `seed` and `until_ms` override the file's. A large run's simulation is freed
    before this returns (see `LARGE_RUN`)."""
    simulation = Simulation(scenario, seed, until_ms)
    result = simulation.run()
    del simulation
    if len(result.instances) >= LARGE_RUN:
        gc.collect()
    return result
