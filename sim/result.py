"""What a run produced, in exactly the JSON shape of docs/scenarios.md ("Result").

`collect` reads what the controller stored after a run: deployment and version records, and every instance's
lifecycle as the core recorded it (the world adds only which manifest an instance behaved as); everything downstream
(metrics, plots, the CLI) works from the JSON form alone, so a saved result can be plotted later.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from operator import attrgetter, itemgetter
from typing import Any

from backends.memory import MemoryStore
from mn_deploy_core.lifecycle import Life
from mn_deploy_core.manifest import runtime_order
from mn_deploy_core.ports import Role
from mn_deploy_core.records import DeploymentRecord
from sim.metrics import compute_metrics
from sim.provenance import Provenance
from sim.world import SimRuntime

JSON = dict[str, Any]
LIFECYCLE_FIELDS = (
    "placed_ms",
    "running_ms",
    "healthy_ms",
    "unhealthy_ms",
    "promoted_ms",
    "stopped_ms",
    "completed_ms",
    "restart_ms",
    "passing_again_ms",
    "discoverable_ms",
)
"""An instance's lifecycle as the result reports it, in the core's own words."""
_LIFECYCLE = attrgetter(*LIFECYCLE_FIELDS)


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


def _deployments(store: MemoryStore) -> list[DeploymentRecord]:
    """In creation order: the allocation number ends the id (`dep_<key>_<n>`)."""
    return sorted(store.list_deployments(), key=lambda r: int(r.deployment_id.rsplit("_", 1)[1]))


def _deployment_json(store: MemoryStore, record: DeploymentRecord) -> JSON:
    data = record.to_json()
    data["events"] = [e.to_json() for e in store.deployment_events(record.deployment_id)]
    return data


def flat_events(deployments: list[JSON]) -> list[JSON]:
    """Every deployment's events in one list, in time order, each naming its deployment."""
    flat = []
    for d in deployments:
        deployment_id = d["deployment_id"]
        for e in d["events"]:
            row = {"t_ms": e["t_ms"], "deployment_id": deployment_id, **e}
            del row["timestamp"]
            flat.append(row)
    return sorted(flat, key=itemgetter("t_ms"))


def _instances(lives: Iterable[Life], runtime: SimRuntime) -> list[JSON]:
    """Every instance's life as the core recorded it, with the role it was placed in (`promoted_ms` says when
    a canary or candidate became primary) and the manifest its behavior came from."""
    placed = {i.placement.instance_id: i for i in runtime.instances()}
    return [
        instance_row(life, placed[life.instance_id].manifest_name, placed[life.instance_id].placement.role.value)
        for life in lives
    ]


def instance_row(life: Life, manifest_name: str | None, role: str) -> JSON:
    """One instance of the result: its life, the manifest it behaved as and the role it was placed in."""
    lifecycle = dict(zip(LIFECYCLE_FIELDS, _LIFECYCLE(life), strict=True))
    lifecycle["restart_ms"] = list(life.restart_ms)
    lifecycle["passing_again_ms"] = list(life.passing_again_ms)
    lifecycle["discoverable_ms"] = [list(interval) for interval in life.discoverable_ms]
    return {
        "instance_id": life.instance_id,
        "agent_id": life.agent_id,
        "deployment_key": life.deployment_key,
        "deployment_id": life.deployment_id,
        "job_id": life.job_id,
        "version": life.version,
        "manifest_name": manifest_name,
        "role": role,
        **lifecycle,
        "restarts": len(life.restart_ms),
        "outcome": life.outcome,
    }


def final_agents(lives: Iterable[Life], names: Mapping[str, str | None]) -> JSON:
    """Per agent the live instance that serves it (the newest primary if there is one, else the newest), read
    from the same records as `instances`, so the two cannot disagree. Records come in placement order; two
    live primaries of one agent happen with batch reruns, where the rerun's job is the key's current one."""
    chosen: dict[str, Life] = {}
    for life in lives:
        current = chosen.get(life.agent_id)
        if current is None or life.role == Role.PRIMARY or current.role != Role.PRIMARY:
            chosen[life.agent_id] = life
    return {
        agent_id: {
            "manifest_name": names[life.instance_id],
            "version": life.version,
            "role": str(life.role),  # a live instance's role is a Role
            "healthy": life.healthy,
            "outcome": life.outcome,
        }
        for agent_id, life in sorted(chosen.items(), key=lambda item: runtime_order(item[0]))
    }


def collect(
    name: str,
    seed: int,
    end_ms: float,
    store: MemoryStore,
    runtime: SimRuntime,
    provenance: Provenance,
    errors: list[JSON],
) -> Result:
    records = _deployments(store)
    deployments = [_deployment_json(store, r) for r in records]
    events = flat_events(deployments)
    lives = store.lives()
    instances = _instances(lives, runtime)
    names = {row["instance_id"]: row["manifest_name"] for row in instances}
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
            "agents": final_agents(
                (life for life in lives if life.deployment_key == key and life.stopped_ms is None), names
            ),
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
