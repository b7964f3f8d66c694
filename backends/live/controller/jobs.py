"""The jobs deployments create, as MirrorNeuron's `GetJob`, `ListJobs` and `CancelJob` show them.

A job has no record of its own: the core names it after the deployment that creates it (`job_<safekey>_<n>`
beside `dep_<safekey>_<n>`, `records.job_id_for`), the deployments that run it name it as their
`target_job_id`, and its live instances carry its id. So a job is read off those, through the controller's reads
only, and what it answers is decided there and nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from mn_deploy_core.controller import Controller
from mn_deploy_core.errors import DeploymentError, NotFoundError, RefusedError
from mn_deploy_core.ports import Role
from mn_deploy_core.records import (
    DeploymentRecord,
    InstanceRecord,
    VersionRecord,
    creating_deployment_id,
    deployment_number,
)
from mn_deploy_core.status import Status


class JobNotFoundError(NotFoundError):
    """No deployment created a job by this id."""

    def __init__(self, job_id: str) -> None:
        DeploymentError.__init__(self, f"job {job_id} was not found")
        self.id_or_key = job_id


@dataclass(frozen=True, slots=True)
class Job:
    """One job: the deployments of its key that ran it (oldest first; the last governs), whether a later one
    replaced it whole (a blue-green whose source it was), its instances the controller knows (live ones, and
    batch ones that completed), and the version that created it."""

    job_id: str
    runs: Sequence[DeploymentRecord]
    replaced: bool
    instances: Sequence[InstanceRecord]
    created: VersionRecord | None

    @property
    def governing(self) -> DeploymentRecord:
        return self.runs[-1]

    @property
    def status(self) -> str:
        """MirrorNeuron's job statuses: `running` while an instance is live (runs or will); then `cancelled`
        when a later deployment replaced it, `failed` when its deployment failed or was cancelled before it
        finished, else `completed` (its agents ran to their end)."""
        if self.running:
            return "running"
        if self.replaced:
            return "cancelled"
        if self.governing.status in (Status.FAILED, Status.CANCELLED):
            return "failed"
        return "completed"

    @property
    def live(self) -> list[InstanceRecord]:
        """The instances that run or will: not completed, stopped or failed for good."""
        return [i for i in self.instances if i.completed_ms is None and i.stopped_ms is None and not i.failed]

    @property
    def running(self) -> bool:
        return bool(self.live)

    @property
    def trial(self) -> bool:
        """Every live instance is an unpromoted canary or candidate: failing its deployment stops them all (R10)."""
        return self.running and all(i.role != Role.PRIMARY for i in self.live)

    def to_json(self, *, instances: bool = True) -> dict[str, Any]:
        """The flat job JSON `mn job status` prints and `mn job list` reads (`job_id`, `graph_id`, `status`,
        `submitted_at`), with the deployment that governs it and, unless left out, its live instances."""
        record = self.governing
        document: dict[str, Any] = {
            "job_id": self.job_id,
            "graph_id": record.target_manifest.get("graph_id") or record.deployment_key,
            "status": self.status,
            "submitted_at": self.created.created_at if self.created else record.created_at,
            "updated_at": record.updated_at,
            "deployment": {
                "deployment_id": record.deployment_id,
                "deployment_key": record.deployment_key,
                "deployment_version": record.target_version,
                "status": record.status,
            },
        }
        if instances:
            document["instances"] = [_instance_json(i) for i in self.instances]
        return document


def find(controller: Controller, job_id: str) -> Job:
    """The job `job_id`, found through the deployment its name says created it."""
    creator_id = creating_deployment_id(job_id)
    try:
        creator = controller.get(creator_id) if creator_id is not None else None
    except NotFoundError:
        creator = None
    if creator is None or creator.deployment_id != creator_id or creator.target_job_id != job_id:
        raise JobNotFoundError(job_id)
    key = creator.deployment_key
    found = _jobs(controller.list(key), controller.instances(key), {key: controller.versions(key)})
    return next(job for job in found if job.job_id == job_id)


def every_job(controller: Controller) -> list[Job]:
    """Every job of every key, newest first."""
    records = controller.list()
    keys = {r.deployment_key for r in records}
    found = _jobs(records, controller.instances(), {key: controller.versions(key) for key in keys})
    return sorted(found, key=lambda job: (job.created.created_at if job.created else "", job.job_id), reverse=True)


def _jobs(
    records: Iterable[DeploymentRecord],
    known: Iterable[InstanceRecord],
    versions: dict[str, list[VersionRecord]],
) -> list[Job]:
    """The jobs the `records` ran (of the keys in `versions`), with the instances of `known` that are theirs."""
    ordered = sorted(records, key=lambda r: (r.deployment_key, deployment_number(r.deployment_id)))
    runs: dict[str, list[DeploymentRecord]] = {}
    for record in ordered:
        if record.target_job_id is not None:
            runs.setdefault(record.target_job_id, []).append(record)
    replaced = {
        r.source_job_id for r in ordered if r.target_job_id != r.source_job_id and r.status == Status.SUCCESSFUL
    }
    by_job: dict[str, list[InstanceRecord]] = {}
    for instance in known:
        by_job.setdefault(instance.job_id, []).append(instance)
    found = []
    for job_id, ran in runs.items():
        created = next((v for v in versions[ran[0].deployment_key] if v.version == ran[0].target_version), None)
        instances = sorted(by_job.get(job_id, ()), key=lambda i: i.instance_id)
        found.append(Job(job_id, ran, job_id in replaced, instances, created))
    return found


def _instance_json(instance: InstanceRecord) -> dict[str, Any]:
    return {
        "instance_id": instance.instance_id,
        "agent_id": instance.agent_id,
        "deployment_version": instance.version,
        "role": instance.role,
        "state": instance.outcome,
    }


def cancel(controller: Controller, job_id: str, *, now: float) -> Job:
    """Cancel a job with the operations the core has: a job that only trials a rollout (unpromoted canaries or a
    blue-green candidate) is ended by failing that rollout, as `mn deployment fail` does, which stops its
    instances (R10). The core has no operation that stops a serving job's primaries (a newer version or a
    rollback replaces them), so that is refused, as is a job that no longer runs. The job as it is after."""
    job = find(controller, job_id)
    record = job.governing
    if not job.running:
        raise RefusedError(f"job {job_id} is {job.status}")
    if not (record.active and job.trial):
        raise RefusedError(
            f"job {job_id} serves deployment {record.deployment_key}: a serving job is replaced by a new version "
            "or a rollback, not cancelled"
        )
    controller.fail(record.deployment_id, f"job {job_id} cancelled by operator", now=now)
    return find(controller, job_id)
