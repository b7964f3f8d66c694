"""A deploy's plan: what the core would decide for a manifest, decided by the real `Controller` on a throwaway copy.

A plan is never a second opinion. The key's state (its deployments, versions and live instances, and the numbers
its next deployment and version would take) is copied into a memory store; a controller takes it over (`restore`,
as a standby would) with a runtime and registry that only keep what they are asked, and is asked to `deploy`. What
it returned and asked for is the plan: the route, the new deployment and version, the changed agents and canaries,
the placements made at once, and the planner's steps (strategies.py) for the rest. Nothing of the copy goes back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from backends.memory import MemoryRegistry, MemoryStore
from mn_deploy_core.controller import Controller
from mn_deploy_core.policy import normalize
from mn_deploy_core.ports import Placement, Role, Store
from mn_deploy_core.records import (
    DeploymentRecord,
    Event,
    InstanceRecord,
    VersionRecord,
    deployment_number,
    version_order,
)
from mn_deploy_core.status import Status
from mn_deploy_core.strategies import UNLIMITED, Step, planner_of

IDEMPOTENT = "idempotent"
"""The route of a deploy that asks for what is already rolling out (R3 step 0): it creates nothing."""
_ROUTES = {"initial": "initial", "noop": "noop", "rerun": "rerun", "blue_green": "blue-green"}
"""Route by the record's mode; an agent-level route is named by its strategy (rolling, canary, progressive)."""


@dataclass(frozen=True, slots=True)
class KeyState:
    """What a deploy of `key` is decided on: its stored records, and the highest deployment number and version
    handed out (a store allocates above them)."""

    key: str
    deployments: tuple[DeploymentRecord, ...]
    versions: tuple[VersionRecord, ...]
    instances: tuple[InstanceRecord, ...]
    last_number: int
    last_version: int

    @classmethod
    def of_store(cls, store: Store, key: str) -> KeyState:
        """A key's state as any store's reads give it; its last numbers are the highest it holds."""
        deployments = tuple(store.list_deployments(key))
        versions = tuple(store.list_versions(key))
        return cls(
            key=key,
            deployments=deployments,
            versions=versions,
            instances=tuple(i for i in store.list_instances() if i.deployment_key == key),
            last_number=max((deployment_number(r.deployment_id) for r in deployments), default=0),
            last_version=max((integer_value(v.version) for v in versions), default=0),
        )


@dataclass(frozen=True, slots=True)
class Placed:
    """A placement the deploy asks for at once."""

    instance_id: str
    agent_id: str
    role: str
    phase: str

    def to_json(self) -> dict[str, str]:
        return {"instance_id": self.instance_id, "agent_id": self.agent_id, "role": self.role, "phase": self.phase}


@dataclass(frozen=True, slots=True)
class PlannedStep:
    """One step of the rollout: its agents in placement order, in `batches` of at most `max_parallel` in flight
    (the next agent goes as soon as one in flight turns healthy), and what ends it."""

    role: str
    phase: str
    agents: tuple[str, ...]
    max_parallel: int
    manual: bool
    pause_ms: int

    @classmethod
    def of(cls, step: Step) -> PlannedStep:
        return cls(step.role.value, step.phase, step.agents, step.budget, step.manual, step.pause_ms)

    @property
    def batches(self) -> tuple[tuple[str, ...], ...]:
        size = self.max_parallel if self.max_parallel != UNLIMITED else max(len(self.agents), 1)
        return tuple(self.agents[i : i + size] for i in range(0, len(self.agents), size))

    @property
    def then(self) -> str:
        """How the step goes on to the next: `promote` (an operator's), `pause` (its pause_ms) or `at once`."""
        return "promote" if self.manual else "pause" if self.pause_ms else "at once"

    def to_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "phase": self.phase,
            "agents": list(self.agents),
            "max_parallel": self.max_parallel,
            "batches": [list(b) for b in self.batches],
            "manual": self.manual,
            "pause_ms": self.pause_ms,
        }


@dataclass(frozen=True, slots=True)
class Plan:
    """What a deploy would do, as the core decided it on the copy; `record` is the record deploy would return."""

    route: str
    record: DeploymentRecord
    cancels: str | None
    placed: tuple[Placed, ...]
    stopped: tuple[str, ...]
    steps: tuple[PlannedStep, ...]
    events: tuple[Event, ...]
    repairs: tuple[str, ...]

    @property
    def creates(self) -> bool:
        """Whether the deploy makes a new deployment and version (all routes but the idempotent one)."""
        return self.route != IDEMPOTENT

    def to_json(self) -> dict[str, Any]:
        record = self.record
        return {
            "route": self.route,
            "deployment_key": record.deployment_key,
            "deployment_id": record.deployment_id,
            "version": record.target_version,
            "creates": self.creates,
            "mode": record.mode,
            "strategy": record.strategy,
            "changed_agent_ids": list(record.changed_agent_ids),
            "canary_agent_ids": list(record.canary_agent_ids),
            "cancels": self.cancels,
            "placed_at_once": [p.to_json() for p in self.placed],
            "stopped_at_once": list(self.stopped),
            "steps": [s.to_json() for s in self.steps],
            "policy": record.policy,
            "events": [e.to_json() for e in self.events],
            "takeover_repairs": list(self.repairs),
        }


def plan_deploy(
    state: KeyState,
    manifest: Mapping[str, Any],
    overrides: Mapping[str, Any] | None,
    key: str | None,
    bundle: str | None,
    *,
    now: float,
) -> Plan:
    """The core's decision on a deploy of `manifest` to the key `state` holds, at `now`; a deploy the core refuses
    raises its DeploymentError, as the deploy would."""
    store = _Copy(state)
    runtime = _Asked()
    controller = Controller(store, runtime, MemoryRegistry())
    repairs = controller.restore(now)
    runtime.forget()  # what the takeover itself asked for is not the deploy's doing
    active = [r.deployment_id for r in store.list_deployments(state.key) if r.active]
    known = {r.deployment_id for r in store.list_deployments(state.key)}
    record = controller.deploy(manifest, overrides, key, bundle, now=now)
    idempotent = record.deployment_id in known
    cancelled = [i for i in active if (r := store.load_deployment(i)) is not None and r.status == Status.CANCELLED]
    return Plan(
        route=IDEMPOTENT if idempotent else _ROUTES.get(record.mode, record.strategy),
        record=record,
        cancels=cancelled[0] if cancelled else None,
        placed=tuple(Placed(p.instance_id, p.agent_id, p.role.value, p.phase) for p in runtime.placed),
        stopped=tuple(runtime.stopped),
        steps=() if idempotent else _steps(record, runtime.placed),
        events=() if idempotent else tuple(store.deployment_events(record.deployment_id)),
        repairs=tuple(repairs),
    )


def _steps(record: DeploymentRecord, placed: Sequence[Placement]) -> tuple[PlannedStep, ...]:
    """The steps the deployment's planner runs (as a takeover rebuilds them); a batch job's agents are all placed
    at once, a noop places none."""
    if record.mode == "noop":
        return ()
    if record.mode == "rerun" or not placed or placed[0].batch:
        agents = tuple(p.agent_id for p in placed)
        return (PlannedStep.of(Step(agents, Role.PRIMARY, record.mode)),) if agents else ()
    planner = planner_of(record.mode, record.strategy)
    return tuple(map(PlannedStep.of, planner.steps(normalize(record.policy), tuple(record.changed_agent_ids))))


def integer_value(text: str | None) -> int:
    """An integer version's or a counter's value (None: never set); anything else counts as 0, as stores allocate
    above them: the rule by which versions sort."""
    return version_order(text or "")[0]


class _Copy(MemoryStore):
    """A memory store holding a copy of one key's state, allocating above its last numbers as the real one would."""

    def __init__(self, state: KeyState) -> None:
        super().__init__()
        self._last_number, self._last_version = state.last_number, state.last_version
        for version in state.versions:
            self.save_version(version)
        for record in state.deployments:
            copy = record.snapshot()
            copy.revision = 0
            self.save_deployment(copy, ())
        self.save_instances(state.instances, ())

    def allocate_deployment_number(self, key: str) -> int:
        self._last_number += 1
        return self._last_number

    def allocate_version(self, key: str) -> str:
        held = (integer_value(v.version) for v in self.list_versions(key))
        self._last_version = max([self._last_version, *held]) + 1
        return str(self._last_version)


class _Asked:
    """A runtime that only keeps what it is asked: placements and stops."""

    def __init__(self) -> None:
        self.placed: list[Placement] = []
        self.stopped: list[str] = []

    def place(self, placement: Placement) -> None:
        self.placed.append(placement)

    def stop(self, instance_id: str) -> None:
        self.stopped.append(instance_id)

    def forget(self) -> None:
        self.placed.clear()
        self.stopped.clear()
