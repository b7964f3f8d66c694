"""What a run produced, in exactly the JSON shape of SCENARIOS.md ("Result").

`collect` reads the controller's records and the world's instance log after a run; everything downstream
(metrics, plots, the CLI) works from the JSON form alone, so a saved result can be plotted later.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Protocol

from backends.memory import MemoryStore
from mn_deploy_core.fleet import InstanceView
from mn_deploy_core.manifest import runtime_order
from mn_deploy_core.ports import Role
from mn_deploy_core.records import DeploymentRecord
from sim.metrics import compute_metrics
from sim.provenance import Provenance
from sim.world import SimInstance, SimRuntime

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Result:
    scenario: str
    seed: int
    end_ms: float
    deployments: list[JSON]
    versions: dict[str, list[JSON]]
    instances: list[JSON]
    events: list[JSON]
    errors: list[JSON]
    final: dict[str, JSON]
    metrics: JSON

    def to_json(self) -> JSON:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def dumps(self) -> str:
        """The canonical text: the same scenario and seed give the same bytes."""
        return json.dumps(self.to_json(), ensure_ascii=False, allow_nan=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Result:
        return cls(**{f.name: data[f.name] for f in fields(cls)})


class LiveInstances(Protocol):
    """The controller's live instances by key, which `final` reports."""

    def instances(self, key: str | None = None) -> list[InstanceView]: ...


def _deployments(store: MemoryStore) -> list[DeploymentRecord]:
    """In creation order: the allocation number ends the id (`dep_<key>_<n>`)."""
    return sorted(store.list_deployments(), key=lambda r: int(r.deployment_id.rsplit("_", 1)[1]))


def _deployment_json(store: MemoryStore, record: DeploymentRecord) -> JSON:
    data = record.to_json()
    data["events"] = [e.to_json() for e in store.deployment_events(record.deployment_id)]
    return data


def _flat_events(deployments: list[JSON]) -> list[JSON]:
    flat = [
        {"t_ms": e["t_ms"], "deployment_id": d["deployment_id"], **{k: v for k, v in e.items() if k != "timestamp"}}
        for d in deployments
        for e in d["events"]
    ]
    return sorted(flat, key=lambda e: e["t_ms"])


def _verdicts(events: list[JSON]) -> tuple[dict[str, float], dict[str, float]]:
    """First healthy and first unhealthy verdict time of each instance."""
    healthy: dict[str, float] = {}
    unhealthy: dict[str, float] = {}
    for event in events:
        if event["type"] == "deployment_instance_healthy":
            healthy.setdefault(event["instance_id"], event["t_ms"])
        elif event["type"] == "deployment_instance_unhealthy":
            unhealthy.setdefault(event["instance_id"], event["t_ms"])
    return healthy, unhealthy


def _outcome(instance: SimInstance, healthy: float | None, unhealthy: float | None) -> str:
    """Unhealthy if ever proved so; else stopped if stopped; else healthy or (still) running."""
    if unhealthy is not None:
        return "unhealthy"
    if instance.stopped:
        return "stopped"
    return "running" if healthy is None else "healthy"


def _instances(runtime: SimRuntime, events: list[JSON]) -> list[JSON]:
    healthy, unhealthy = _verdicts(events)
    rows = []
    for instance in runtime.instances():
        placement = instance.placement
        iid = placement.instance_id
        rows.append(
            {
                "instance_id": iid,
                "agent_id": placement.agent_id,
                "job_id": placement.job_id,
                "version": placement.deployment_version,
                "manifest_name": instance.manifest_name,
                "role": str(placement.role),
                "placed_ms": instance.placed_ms,
                "running_ms": instance.running_ms,
                "healthy_ms": healthy.get(iid),
                "unhealthy_ms": unhealthy.get(iid),
                "stopped_ms": instance.stopped_ms,
                "restarts": instance.restarts,
                "outcome": _outcome(instance, healthy.get(iid), unhealthy.get(iid)),
            }
        )
    return rows


def _final_agents(views: Iterable[InstanceView], manifest_names: Mapping[str, str | None]) -> JSON:
    """Per agent the instance that serves it: the primary if there is one, else the newest."""
    chosen: dict[str, InstanceView] = {}
    for view in views:
        current = chosen.get(view.agent_id)
        if current is None or current.role != Role.PRIMARY:
            chosen[view.agent_id] = view
    return {
        agent_id: {
            "manifest_name": manifest_names.get(view.instance_id),
            "version": view.version,
            "role": view.role,
            "healthy": view.healthy,
        }
        for agent_id, view in sorted(chosen.items(), key=lambda item: runtime_order(item[0]))
    }


def collect(
    name: str,
    seed: int,
    end_ms: float,
    store: MemoryStore,
    controller: LiveInstances,
    runtime: SimRuntime,
    provenance: Provenance,
    errors: list[JSON],
) -> Result:
    records = _deployments(store)
    deployments = [_deployment_json(store, r) for r in records]
    events = _flat_events(deployments)
    instances = _instances(runtime, events)
    manifest_names = {row["instance_id"]: row["manifest_name"] for row in instances}
    keys = list(dict.fromkeys(r.deployment_key for r in records))
    versions = {
        key: [
            {
                "version": v.version,
                "stable": v.stable,
                "spec_digest": v.spec_digest,
                "manifest_name": provenance.of_version(v),
                "created_by": v.created_by,
                "rollback": None if v.rollback is None else dict(v.rollback),
            }
            for v in store.list_versions(key)
        ]
        for key in keys
    }
    final = {}
    for key in keys:
        current = store.load_deployment(store.current_deployment_id(key) or "")
        assert current is not None
        final[key] = {
            "current_version": current.current_version,
            "stable_version": current.stable_version,
            "status": current.status,
            "agents": _final_agents(controller.instances(key), manifest_names),
        }
    return Result(
        scenario=name,
        seed=seed,
        end_ms=end_ms,
        deployments=deployments,
        versions=versions,
        instances=instances,
        events=events,
        errors=errors,
        final=final,
        metrics=compute_metrics(deployments, instances, events, end_ms),
    )
