"""A scripted world for driving the core by hand: a runtime that only records, and a manual clock.

Like httpx's MockTransport, the runtime is the narrowest possible backend: tests decide which facts each
instance reports and when, then `advance` fires every timer up to a time, as a driver would.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from backends.memory import MemoryRecorder, MemoryRegistry, MemoryStore
from mn_deploy_core.controller import Controller
from mn_deploy_core.ports import Fact, FactKind, Placement
from mn_deploy_core.records import DeploymentRecord, InstanceRecord


class ManualClock:
    """The time operator calls see; tests move it."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class ScriptedRuntime:
    """Records placements and stops; reports nothing by itself."""

    def __init__(self) -> None:
        self.placements: dict[str, Placement] = {}
        self.order: list[str] = []
        self.stopped: list[str] = []

    def place(self, placement: Placement) -> None:
        self.placements[placement.instance_id] = placement
        self.order.append(placement.instance_id)

    def stop(self, instance_id: str) -> None:
        self.stopped.append(instance_id)

    @property
    def live(self) -> list[str]:
        stopped = set(self.stopped)
        return [i for i in self.order if i not in stopped]


class World:
    """A controller wired to a scripted runtime, memory store and registry, with helpers for facts."""

    def __init__(self, store: MemoryStore | None = None, recorder: MemoryRecorder | None = None) -> None:
        self.clock = ManualClock()
        self.runtime = ScriptedRuntime()
        self.store = store if store is not None else MemoryStore()
        self.registry = MemoryRegistry()
        self.recorder = recorder
        self.controller = Controller(self.store, self.runtime, self.registry, recorder)
        self.reported: set[str] = set()

    # -- time ----------------------------------------------------------------------------------

    def advance(self, until: float) -> None:
        """Fire every timer due up to `until`, each at its own time, then set the clock to `until`."""
        while (wake := self.controller.next_wakeup()) is not None and wake <= until:
            self.clock.now = max(self.clock.now, wake)
            self.controller.tick(wake)
        self.clock.now = max(self.clock.now, until)

    # -- facts ---------------------------------------------------------------------------------

    def report(self, instance_id: str, kind: FactKind, check: str = "") -> None:
        self.controller.observe(Fact(instance_id, kind, check), self.clock.now)

    def bring_up(self, instance_ids: Iterable[str] | None = None) -> list[str]:
        """Each instance (default: every live one without facts yet) reports running, ready, checks passing."""
        ids = list(self.fresh() if instance_ids is None else instance_ids)
        for instance_id in ids:
            self.report(instance_id, FactKind.RUNNING)
            self.report(instance_id, FactKind.READY)
            for check in self.runtime.placements[instance_id].checks:
                self.report(instance_id, FactKind.CHECK_PASSING, check)
        self.reported.update(ids)
        return ids

    def fresh(self) -> list[str]:
        """Live instances that have not been brought up yet."""
        return [i for i in self.runtime.live if i not in self.reported]

    def converge(self, limit: int = 100_000) -> None:
        """Bring up every new instance as soon as it is placed and let time pass until nothing is pending."""
        for _ in range(limit):
            self.bring_up()
            wake = self.controller.next_wakeup()
            if wake is None:
                return
            self.advance(wake)
        raise AssertionError("the world did not settle")

    def restart_controller(self) -> list[str]:
        """A new controller on the same store, registry and runtime (the instances keep running), as after a
        controller crash; it takes over with `restore`, whose repairs are returned."""
        self.controller = Controller(self.store, self.runtime, self.registry, self.recorder)
        return self.controller.restore(self.clock.now)

    @classmethod
    def settled(cls, manifest: Mapping[str, Any], recorder: MemoryRecorder | None = None) -> World:
        """A world whose first deployment, of `manifest`, has rolled out and is stable."""
        world = cls(recorder=recorder)
        record = world.deploy(manifest)
        world.converge()
        assert world.record(record.deployment_id).status == "successful"
        return world

    # -- shortcuts -----------------------------------------------------------------------------

    def deploy(self, manifest: Mapping[str, Any], **kwargs: Any) -> DeploymentRecord:
        return self.controller.deploy(manifest, now=self.clock.now, **kwargs)

    def record(self, id_or_key: str) -> DeploymentRecord:
        return self.controller.get(id_or_key)

    def event_types(self, id_or_key: str) -> list[str]:
        return [e.type for e in self.store.deployment_events(self.record(id_or_key).deployment_id)]

    def instances_of(self, deployment_id: str) -> list[InstanceRecord]:
        """Live instances placed by one deployment, in placement order of the fleet."""
        return [v for v in self.controller.instances() if v.deployment_id == deployment_id]

    def in_flight(self, deployment_id: str) -> list[str]:
        """Agents of one deployment with a live instance that has no verdict yet (R5)."""
        return [v.agent_id for v in self.instances_of(deployment_id) if v.healthy is None]


def service_manifest(
    image: str = "agent:1",
    *,
    key: str = "agent-api",
    count: int = 3,
    checks: int = 1,
    update: Mapping[str, Any] | None = None,
    extra_nodes: Iterable[Mapping[str, Any]] = (),
    job_type: str = "service",
    reschedule: int | None = None,
    **top: Any,
) -> dict[str, Any]:
    """A MirrorNeuron service manifest with one counted node serving `api` behind `checks` http checks;
    `reschedule`: the replacements allowed per agent (0: an agent lost after its rollout stays lost, R16)."""
    services = [{"name": "api", "checks": [{"type": "http", "path": f"/health/{i}"} for i in range(checks)]}]
    node = {
        "node_id": "worker",
        "agent_type": "executor",
        "count": count,
        "config": {"image": image},
        "services": services,
    }
    return {
        "manifest_version": "1",
        "graph_id": key,
        "job_type": job_type,
        "deployment": {"key": key},
        "nodes": [node, *extra_nodes],
        "edges": [],
        "policies": {
            "update": {"min_healthy_ms": 1000, **(update or {})},
            **({} if reschedule is None else {"reschedule": {"attempts": reschedule}}),
        },
        **top,
    }
