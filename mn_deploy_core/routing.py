"""Routing an update (R3, R3b): a new deployment's record and version, and which planner runs it.

A key's first deployment places every agent (`INITIAL`); a batch job is not rolled out (the first deploy is
stable at once, later ones are reruns); the same specification running now is a noop; a whole-job strategy,
a changed topology or a job with nothing live left is replaced blue-green; anything else updates the changed
agents with the planner the policy names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from mn_deploy_core.actuator import Actuator
from mn_deploy_core.errors import InvalidManifestError, UndeployableVersionError
from mn_deploy_core.fleet import Job
from mn_deploy_core.manifest import Manifest, changed_agents, load_manifest
from mn_deploy_core.ports import Role, Store
from mn_deploy_core.records import (
    Counters,
    DeploymentRecord,
    VersionRecord,
    deployment_id,
    deployment_number,
    iso_timestamp,
    job_id_for,
)
from mn_deploy_core.rollout import Journal, Rollout
from mn_deploy_core.status import NOOP, RUNNING, SUCCESSFUL, VERSION_RECORDED, Status, Trigger, transition
from mn_deploy_core.strategies import BLUE_GREEN, INITIAL, Planner, planner


class Router:
    """Creates deployments; the controller activates the rollouts it returns."""

    def __init__(self, store: Store, actuator: Actuator, touched: dict[str, Journal]) -> None:
        self._store = store
        self._actuator = actuator
        self._touched = touched
        self._versions: dict[tuple[str, str], VersionRecord] = {}

    def current_record(self, key: str) -> DeploymentRecord | None:
        """The key's newest deployment, as this call has changed it so far (it is stored at the call's end)."""
        current = self._store.current_deployment_id(key)
        stored = self._store.load_deployment(current) if current else None
        touched = [j.record for j in self._touched.values() if j.record.deployment_key == key]
        candidates = [*touched, *([stored] if stored else [])]
        return max(candidates, key=lambda r: deployment_number(r.deployment_id), default=None)

    @property
    def unsaved(self) -> bool:
        return bool(self._versions)

    def take_versions(self) -> list[VersionRecord]:
        """The version records written since the last call, for the store's batch."""
        versions = list(self._versions.values())
        self._versions.clear()
        return versions

    def route(
        self,
        target: Manifest,
        now: float,
        created_by: str,
        rollback: Mapping[str, Any] | None,
        revert_of: Rollout | None,
    ) -> Journal:
        """R3 steps 1-4 and R3b, against what runs now (a changed agent has no live instance at its spec)."""
        if revert_of is not None:
            target = _fast_revert(target, revert_of)
        previous = self.current_record(target.key)
        number = self._store.allocate_deployment_number(target.key)
        new_job_id = job_id_for(target.key, number)

        def new(trigger: Trigger) -> tuple[DeploymentRecord, VersionRecord]:
            return self._new_deployment(target, number, previous, created_by, rollback, now, trigger)

        if not target.long_running:
            if previous is None:
                return self._batch_initial(*new(Trigger.START), target, new_job_id, now)
            return self._rerun(*new(Trigger.RERUN), target, new_job_id, now)
        job = self._actuator.fleet.jobs.get(target.key)
        if previous is None or job is None:
            return self._start_rollout(*new(Trigger.START), target, INITIAL, new_job_id, now)
        changed = changed_agents(job.digests(), target)
        if not changed and job.topology == target.topology:
            return self._noop(*new(Trigger.NOOP), target, job, now)
        chosen = planner(target.policy.strategy)
        if chosen.whole_job or job.topology != target.topology or not job.active:
            return self._start_rollout(*new(Trigger.START), target, BLUE_GREEN, new_job_id, now, job)
        return self._start_rollout(*new(Trigger.START), target, chosen, job.job_id, now, job, changed)

    def succeed(self, journal: Journal, version: VersionRecord, job_id: str, now: float, description: str) -> None:
        """Mark the version stable and the record successful, serving from `job_id`."""
        stamp = iso_timestamp(now)
        self._save(replace(version, job_id=job_id, stable=True, updated_at=stamp))
        if journal.record.active:
            journal.move(Trigger.SUCCEED, now)
        journal.set(
            now,
            description=description,
            current_job_id=job_id,
            stable_job_id=job_id,
            current_version=version.version,
            stable_version=version.version,
            health={"job_status": Status.RUNNING, "updated_at": stamp},
        )

    def finish(self, rollout: Rollout, now: float) -> None:
        """Every step of `rollout` is done (R5)."""
        self.succeed(rollout, rollout.version, rollout.job_id, now, SUCCESSFUL)
        rollout.event("deployment_successful", now, job_id=rollout.job_id, version=rollout.version.version)

    def _save(self, version: VersionRecord) -> None:
        self._versions[(version.deployment_key, version.version)] = version

    def _new_deployment(
        self,
        target: Manifest,
        number: int,
        previous: DeploymentRecord | None,
        created_by: str,
        rollback: Mapping[str, Any] | None,
        now: float,
        trigger: Trigger,
    ) -> tuple[DeploymentRecord, VersionRecord]:
        """A new record in the status `trigger` starts it in, and a fresh version, carrying the key's current
        and stable fields over."""
        key = target.key
        dep_id = deployment_id(key, number)
        version = self._store.allocate_version(key)
        stamp = iso_timestamp(now)
        record = DeploymentRecord(
            deployment_id=dep_id,
            deployment_key=key,
            status=transition(dep_id, None, trigger).status,
            description=RUNNING,
            strategy=target.policy.strategy,
            mode=INITIAL.mode,
            policy=target.policy.to_json(),
            target_manifest=target.document,
            created_at=stamp,
            updated_at=stamp,
            target_version=version,
            rollback=rollback,
        )
        if previous is not None:
            record.current_job_id, record.stable_job_id = previous.current_job_id, previous.stable_job_id
            record.current_version, record.stable_version = previous.current_version, previous.stable_version
        version_record = VersionRecord(
            deployment_key=key,
            version=version,
            deployment_id=dep_id,
            job_id=None,
            manifest=target.document,
            spec_digest=target.spec_digest,
            created_at=stamp,
            updated_at=stamp,
            created_by=created_by,
            rollback=rollback,
            manifest_ref={"bundle_fingerprint": target.bundle} if target.bundle else {},
        )
        return record, version_record

    def _journal(self, record: DeploymentRecord, target: Manifest, now: float) -> Journal:
        """The new deployment's journal, opened with its first events."""
        journal = Journal(record, self._touched)
        self._opening_events(journal, target, now)
        return journal

    @staticmethod
    def _opening_events(journal: Journal, target: Manifest, now: float) -> None:
        """R15: what a deployment says before anything else, whichever way it is routed."""
        if target.overrides_ignored:
            journal.event("deployment_policy_overrides_ignored", now, fields=list(target.overrides_ignored))

    def _start_rollout(
        self,
        record: DeploymentRecord,
        version: VersionRecord,
        target: Manifest,
        chosen: Planner,
        job_id: str,
        now: float,
        source: Job | None = None,
        changed: tuple[str, ...] = (),
    ) -> Rollout:
        agents = changed or target.agent_ids()
        steps = chosen.steps(target.policy, agents)
        if chosen is INITIAL:
            self._actuator.fleet.jobs[target.key] = Job(job_id, target.topology)
            record.current_job_id = job_id
        elif chosen is BLUE_GREEN:
            record.strategy = BLUE_GREEN.name
        record.mode = chosen.mode
        record.source_job_id = source.job_id if source else None
        record.target_job_id = job_id
        record.changed_agent_ids = agents
        trial = steps[0].agents if steps[0].role is Role.CANARY else ()
        record.canary_agent_ids = trial
        record.counters = Counters(desired_total=len(agents), desired_canaries=len(trial))
        version = replace(version, job_id=job_id)
        self._save(version)
        rollout = Rollout(self._touched, record, version, job_id, target, chosen, steps)
        rollout.set(now, description=rollout.running_description())
        self._opening_events(rollout, target, now)
        if chosen is INITIAL:
            rollout.event("deployment_created", now, job_id=job_id, version=version.version)
        elif chosen is BLUE_GREEN:
            rollout.event("deployment_started", now, version=version.version, target_job_id=job_id, mode=chosen.mode)
        else:
            rollout.event("deployment_started", now, version=version.version, changed_agent_ids=list(changed))
        return rollout

    def _batch_initial(
        self, record: DeploymentRecord, version: VersionRecord, target: Manifest, job_id: str, now: float
    ) -> Journal:
        """R3b: a batch job is not health gated, so its first deploy is stable as soon as it is placed."""
        record.target_job_id = job_id
        journal = self._journal(record, target, now)
        journal.event("deployment_created", now, job_id=job_id, version=version.version)
        self._place_batch(record, target, job_id, INITIAL.mode, now)
        self.succeed(journal, version, job_id, now, SUCCESSFUL)
        journal.event("deployment_successful", now, job_id=job_id, version=version.version)
        return journal

    def _rerun(
        self, record: DeploymentRecord, version: VersionRecord, target: Manifest, job_id: str, now: float
    ) -> Journal:
        """R3 step 1: batch jobs keep a versioned rerun history; nothing rolls and earlier jobs run on."""
        version = replace(version, job_id=job_id)
        self._save(version)
        record.mode = "rerun"
        journal = self._journal(record, target, now)
        journal.set(
            now,
            description=VERSION_RECORDED,
            current_job_id=job_id,
            target_job_id=job_id,
            current_version=version.version,
        )
        journal.event("deployment_version_recorded", now, job_id=job_id, version=version.version)
        self._place_batch(record, target, job_id, "rerun", now)
        return journal

    def _place_batch(self, record: DeploymentRecord, target: Manifest, job_id: str, phase: str, now: float) -> None:
        """Every agent of a new batch job at once, as primary; the job becomes the key's current one."""
        job = Job(job_id, target.topology, long_running=False)
        for agent_id in target.agents:
            instance_id = f"{record.deployment_id}.{agent_id}.0"
            job.primaries[agent_id] = self._actuator.launch(
                record, target, agent_id, Role.PRIMARY, job_id, phase, instance_id, now
            )
        record.counters = Counters(desired_total=len(job.primaries), placed=len(job.primaries))
        self._actuator.fleet.jobs[target.key] = job

    def _noop(
        self, record: DeploymentRecord, version: VersionRecord, target: Manifest, job: Job, now: float
    ) -> Journal:
        """R3 step 2: every agent already has a live instance at the target spec; stable at once."""
        record.mode = "noop"
        journal = self._journal(record, target, now)
        self.succeed(journal, version, job.job_id, now, NOOP)
        journal.event("deployment_noop", now, version=version.version)
        return journal


def same_target(active: Rollout, target: Manifest) -> bool:
    """R3 step 0: `target` asks for nothing `active` is not already doing. An agent-level route is shaped by
    its policies (canaries, budget, reschedules), so there they must match too."""
    if active.manifest.spec_digest != target.spec_digest:
        return False
    if active.planner.whole_job or active.planner is INITIAL:
        return True
    return _policies(active.manifest) == _policies(target)


def _policies(manifest: Manifest) -> tuple[object, ...]:
    return manifest.policy, manifest.restart, manifest.reschedule


def manifest_of(version: VersionRecord) -> Manifest:
    """A stored version as a manifest again, with the payload bundle it shipped with. A version stored before a
    validation rule it breaks was added raises UndeployableVersionError, naming the version."""
    bundle = version.manifest_ref.get("bundle_fingerprint") if version.manifest_ref else None
    try:
        return load_manifest(version.manifest, bundle=bundle)
    except InvalidManifestError as error:
        raise UndeployableVersionError(version.deployment_key, version.version, error.problems) from None


def _fast_revert(target: Manifest, failed: Rollout) -> Manifest:
    """R10: an auto-revert skips canaries and promotion (the target was proven) and keeps the failed
    deployment's max_parallel."""
    policy = replace(
        target.policy,
        canary=0,
        auto_promote=False,
        max_parallel=failed.policy.max_parallel,
        strategy=planner(target.policy.strategy).revert_as,
    )
    return replace(target, policy=policy)
