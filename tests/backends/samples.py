"""Small records for backend tests: only the fields a store cares about vary."""

from __future__ import annotations

from typing import Any

from mn_deploy_core.ports import Role, ServiceInstance
from mn_deploy_core.records import DeploymentRecord, Event, VersionRecord, deployment_id, iso_timestamp


def deployment(key: str, number: int, *, status: str = "running", **fields: Any) -> DeploymentRecord:
    return DeploymentRecord(
        deployment_id=deployment_id(key, number),
        deployment_key=key,
        status=status,
        description="Deployment is running",
        strategy="rolling",
        mode="agent_level",
        policy={"strategy": "rolling", "max_parallel": 1},
        target_manifest={"graph_id": key, "nodes": [{"node_id": "worker", "agent_type": "echo"}]},
        created_at=iso_timestamp(0),
        updated_at=iso_timestamp(0),
        **fields,
    )


def event(kind: str = "deployment_started", t_ms: float = 0.0, **fields: Any) -> Event:
    return Event(type=kind, t_ms=t_ms, timestamp=iso_timestamp(t_ms), fields=fields)


def version(key: str, number: str, *, deployment: str = "", stable: bool = False) -> VersionRecord:
    return VersionRecord(
        deployment_key=key,
        version=number,
        deployment_id=deployment,
        job_id=f"job-{key}-{number}",
        manifest={"graph_id": key},
        spec_digest=f"digest-{number}",
        created_at=iso_timestamp(0),
        updated_at=iso_timestamp(0),
        stable=stable,
    )


def service(
    instance_id: str,
    *,
    name: str = "api",
    version: str = "1",
    role: str = Role.PRIMARY,
    passing: bool = True,
    key: str = "agent-api",
) -> ServiceInstance:
    return ServiceInstance(
        name=name,
        instance_id=instance_id,
        agent_id=instance_id.split("#")[0],
        job_id=f"job-{version}",
        deployment_id=f"dep_{key}_{version}",
        deployment_key=key,
        deployment_version=version,
        deployment_role=role,
        passing=passing,
    )
