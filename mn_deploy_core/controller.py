"""The public API of the core (R3, R4, R10, R11): every call returns at once.

Operator calls (`deploy`, `promote`, `rollback`, `pause`, `resume`, `fail`) read the time from the
injected clock; a driver feeds facts with `observe(fact, now)` and calls `tick(now)` at `next_wakeup()`.
Side effects go out through the Store, Runtime and Registry ports; each touched record is saved once at
the end of the call that changed it.
"""

from __future__ import annotations

import builtins
import heapq
import itertools
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from mn_deploy_core.errors import NoRollbackTargetError, NotFoundError, RefusedError
from mn_deploy_core.fleet import Fleet, Instance, InstanceView, Job
from mn_deploy_core.health import HealthTracker, Verdict
from mn_deploy_core.manifest import Manifest, changed_agents, load_manifest
from mn_deploy_core.policy import normalize
from mn_deploy_core.ports import Fact, FactKind, Placement, Registry, Role, Runtime, ServiceInstance, Store
from mn_deploy_core.records import (
    Counters,
    DeploymentRecord,
    VersionRecord,
    deployment_id,
    iso_timestamp,
    safe_key,
)
from mn_deploy_core.rollout import (
    CANCELLED,
    FAILED_BY_OPERATOR,
    FAILED_DEADLINE,
    NOOP,
    RUNNING,
    SUCCESSFUL,
    VERSION_RECORDED,
    Journal,
    Mode,
    Rollout,
    plan,
)

_PHASES = {
    (Mode.INITIAL, Role.PRIMARY): "initial",
    (Mode.AGENT_LEVEL, Role.PRIMARY): "rolling",
    (Mode.AGENT_LEVEL, Role.CANARY): "canary",
    (Mode.BLUE_GREEN, Role.CANDIDATE): "blue_green",
}


class Controller:
    """Decides every rollout of every key; one per world."""

    def __init__(self, store: Store, runtime: Runtime, registry: Registry, clock: Callable[[], float]) -> None:
        self._store = store
        self._runtime = runtime
        self._registry = registry
        self._clock = clock
        self._fleet = Fleet()
        self._health = HealthTracker()
        self._active: dict[str, Rollout] = {}
        self._active_by_key: dict[str, Rollout] = {}
        self._deadlines: list[tuple[float, int, str]] = []
        self._seq = itertools.count()
        self._touched: dict[str, Journal] = {}
        self._changed_instances: dict[str, Instance] = {}
        self._removed_instances: set[str] = set()

    # ---- operator API ------------------------------------------------------------------------

    def deploy(
        self,
        manifest: Mapping[str, Any],
        overrides: Mapping[str, Any] | None = None,
        key: str | None = None,
        bundle: str | None = None,
    ) -> DeploymentRecord:
        """Validate, then route (R3): initial, rerun, noop, blue-green or agent-level.

        `bundle` fingerprints the payloads shipped with the manifest; it is kept with the version so a
        rollback redeploys the same payloads, and it is part of the spec digest.
        """
        target = load_manifest(manifest, overrides, key, bundle)
        journal = self._start(target, self._clock(), created_by="deploy")
        return self._saved(journal)

    def promote(self, id_or_key: str) -> DeploymentRecord:
        rollout = self._active_rollout(id_or_key, "promoted")
        if rollout.record.status != "awaiting_promotion":
            raise RefusedError(f"deployment is {rollout.record.status}, expected awaiting_promotion")
        rollout.promote(self._clock())
        return self._saved(rollout)

    def pause(self, id_or_key: str, reason: str | None = None) -> DeploymentRecord:
        rollout = self._active_rollout(id_or_key, "paused")
        rollout.pause(self._clock(), reason)
        return self._saved(rollout)

    def resume(self, id_or_key: str, reason: str | None = None) -> DeploymentRecord:
        rollout = self._active_rollout(id_or_key, "resumed")
        rollout.resume(self._clock(), reason)
        return self._saved(rollout)

    def fail(self, id_or_key: str, reason: str | None = None) -> DeploymentRecord:
        rollout = self._active_rollout(id_or_key, "failed")
        self._fail(rollout, self._clock(), FAILED_BY_OPERATOR, reason)
        return self._saved(rollout)

    def rollback(self, id_or_key: str, version: str | None = None, reason: str | None = None) -> DeploymentRecord:
        """A new forward version copying `version` (default: the highest stable one not current, R11)."""
        key = self.get(id_or_key).deployment_key
        from_version = self._current_version(key)
        target = self._rollback_target(key, version, from_version)
        rollback = {"from_version": from_version, "to_version": target.version, "reason": reason}
        journal = self._start(_manifest_of(target), self._clock(), "rollback", rollback)
        return self._saved(journal)

    def _current_version(self, key: str) -> str | None:
        """R11: mid-rollout the current version is the one rolling out, so a rollback leaves it, not the last stable."""
        active = self._active_by_key.get(key)
        if active is not None:
            return active.version.version
        current = self._current_record(key)
        return current.current_version if current else None

    def _rollback_target(self, key: str, version: str | None, current: str | None) -> VersionRecord:
        """`version` as stored, or the highest stable version other than `current`; none is an error (R11)."""
        versions = self._store.list_versions(key)
        if version:
            targets = [v for v in versions if v.version == version]
        else:
            targets = [v for v in versions if v.stable and v.version != current]
        if not targets:
            raise NoRollbackTargetError(key)
        return targets[-1]

    def get(self, id_or_key: str) -> DeploymentRecord:
        """By id first, then by key (the key's current deployment)."""
        record = self._store.load_deployment(id_or_key)
        if record is None:
            current = self._store.current_deployment_id(id_or_key)
            record = self._store.load_deployment(current) if current else None
        if record is None:
            raise NotFoundError(id_or_key)
        return record

    def list(self, key: str | None = None, status: str | None = None) -> builtins.list[DeploymentRecord]:
        return self._store.list_deployments(key, status)

    def versions(self, key: str) -> builtins.list[VersionRecord]:
        return self._store.list_versions(key)

    def instances(self, key: str | None = None) -> builtins.list[InstanceView]:
        return self._fleet.views(key)

    # ---- driver API --------------------------------------------------------------------------

    def restore(self, now: float) -> None:
        """Take over from a previous controller: rebuild live instances, each key's current job and every
        active deployment from the store, then let each deployment go on.

        Deadlines are those stored. A healthy instance that was serving counts as ready and passing until a
        fact says otherwise; any other needs the runtime to report its current facts again.
        """
        records = {r.deployment_id: r for r in self._store.list_deployments()}
        manifests: dict[tuple[str, str], Manifest] = {}
        adopted: dict[str, builtins.list[Instance]] = {}
        for stored in self._store.list_instances():
            record = records[stored.deployment_id]
            manifest = self._version_manifest(manifests, stored.deployment_key, stored.version)
            manifest = replace(manifest, policy=normalize(record.policy))
            policy = manifest.policy
            agent = manifest.agents[stored.agent_id]
            instance = Instance.from_record(stored, agent)
            self._fleet.add(instance)
            verdict = None if stored.healthy is None else Verdict.HEALTHY if stored.healthy else Verdict.UNHEALTHY
            checks = agent.checks if policy.health_check == "checks" else ()
            self._health.restore(
                stored.instance_id,
                stored.placed_ms,
                policy.min_healthy_ms,
                manifest.healthy_deadline_ms,
                checks,
                verdict,
                stored.serving,
                completed=stored.completed_ms is not None,
            )
            self._registry.set_passing(stored.instance_id, stored.serving)
            adopted.setdefault(stored.deployment_id, []).append(instance)
        for key in {i.deployment_key for i in self._fleet.instances.values()}:
            self._restore_job(key, manifests)
        for record in records.values():
            if record.active:
                self._restore_rollout(record, adopted.get(record.deployment_id, []), now)
        self._flush()

    def _restore_job(self, key: str, manifests: dict[tuple[str, str], Manifest]) -> None:
        current = self._current_record(key)
        job_id = current.current_job_id if current else None
        primaries = {
            i.agent_id: i
            for i in self._fleet.instances.values()
            if i.deployment_key == key and i.job_id == job_id and i.role is Role.PRIMARY
        }
        if job_id is None or not primaries:
            return
        some = next(iter(primaries.values()))
        topology = self._version_manifest(manifests, key, some.version).topology
        self._fleet.jobs[key] = Job(job_id, topology, primaries)

    def _restore_rollout(self, record: DeploymentRecord, instances: builtins.list[Instance], now: float) -> None:
        key, version_id = record.deployment_key, record.target_version or ""
        version = self._store.load_version(key, version_id)
        if version is None:
            return
        target = replace(_manifest_of(version), policy=normalize(record.policy))
        mode = Mode(record.mode)
        steps = plan(mode, target, record.changed_agent_ids if mode is Mode.AGENT_LEVEL else ())
        job_id = record.target_job_id or ""
        if key not in self._fleet.jobs:
            self._fleet.jobs[key] = Job(job_id, target.topology)
        rollout = Rollout(self, self._touched, record, version, job_id, target, mode, steps, record.remaining_agent_ids)
        rollout.adopt(instances)
        self._activate(rollout)
        self.deadline_moved(rollout)
        rollout.start(now)

    def _version_manifest(self, cache: dict[tuple[str, str], Manifest], key: str, version: str) -> Manifest:
        if (key, version) not in cache:
            stored = self._store.load_version(key, version)
            if stored is None:
                raise NotFoundError(f"{key} version {version}")
            cache[(key, version)] = _manifest_of(stored)
        return cache[(key, version)]

    def observe(self, fact: Fact, now: float) -> None:
        """Fold one runtime fact in; O(1) apart from what the resulting decision places or stops."""
        instance = self._fleet.instances.get(fact.instance_id)
        if instance is None:
            return
        record = _LIFECYCLE.get(fact.kind)
        if record is not None:
            record(instance, now)
            self._changed_instances[instance.instance_id] = instance
        verdict = self._health.observe(fact, now)
        if verdict is not None:
            self._on_verdict(instance, verdict, now)
        else:
            self._update_serving(instance, now)
        self._flush()

    def tick(self, now: float) -> None:
        """Fire every timer due by `now`, in time order (a health verdict before a deadline at the same ms)."""
        while True:
            health_at = self._health.next_wakeup()
            deadline_at = self._next_deadline()
            if deadline_at is not None and deadline_at <= now and (health_at is None or deadline_at < health_at):
                self._deadline_due(deadline_at)
            elif health_at is not None and health_at <= now:
                due = self._health.pop_due(health_at)
                if due is not None:
                    at, instance_id, verdict = due
                    self._on_verdict(self._fleet.instances[instance_id], verdict, at)
            else:
                break
        self._flush()

    def next_wakeup(self) -> float | None:
        health, deadline = self._health.next_wakeup(), self._next_deadline()
        if health is None or deadline is None:
            return deadline if health is None else health
        return min(health, deadline)

    # ---- routing -----------------------------------------------------------------------------

    def _start(
        self,
        target: Manifest,
        now: float,
        created_by: str,
        rollback: Mapping[str, Any] | None = None,
        revert_of: Rollout | None = None,
    ) -> Journal:
        """R3: a new deployment of `target`, unless a deploy asks for what the active one already does."""
        key = target.key
        self._flush()
        active = self._active_by_key.get(key)
        if created_by == "deploy" and active is not None and _same_target(active, target):
            return active  # step 0: re-registering what is already rolling out creates nothing
        previous = self._current_record(key)
        if active is not None:
            active.end(now, "cancelled", CANCELLED, "deployment_cancelled")
            self._retire(active)
        if revert_of is not None:
            target = _fast_revert(target, revert_of.policy.max_parallel)
        number = self._store.allocate_deployment_number(key)
        record, version = self._new_deployment(target, number, previous, created_by, rollback, now)
        return self._route(record, version, target, previous is None, f"job_{safe_key(key)}_{number}", now)

    def _new_deployment(
        self,
        target: Manifest,
        number: int,
        previous: DeploymentRecord | None,
        created_by: str,
        rollback: Mapping[str, Any] | None,
        now: float,
    ) -> tuple[DeploymentRecord, VersionRecord]:
        """A running record and a fresh version, carrying the key's current and stable fields over."""
        key = target.key
        dep_id = deployment_id(key, number)
        version = self._store.allocate_version(key)
        stamp = iso_timestamp(now)
        record = DeploymentRecord(
            deployment_id=dep_id,
            deployment_key=key,
            status="running",
            description=RUNNING,
            strategy=target.policy.strategy,
            mode=Mode.INITIAL,
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

    def _route(
        self,
        record: DeploymentRecord,
        version: VersionRecord,
        target: Manifest,
        first: bool,
        new_job_id: str,
        now: float,
    ) -> Journal:
        """R3 steps 1-4 and R3b, against what runs now (a changed agent has no live instance at its spec)."""
        if not target.long_running:
            if first:
                return self._batch_initial(record, version, target, new_job_id, now)
            return self._rerun(record, version, target, new_job_id, now)
        job = self._fleet.jobs.get(target.key)
        if first or job is None:
            return self._start_rollout(record, version, target, Mode.INITIAL, new_job_id, now)
        changed = changed_agents(job.digests(), target)
        if not changed and job.topology == target.topology:
            return self._noop(record, version, job, now)
        if target.policy.strategy == "blue-green" or job.topology != target.topology or not job.active:
            return self._start_rollout(record, version, target, Mode.BLUE_GREEN, new_job_id, now, job)
        return self._start_rollout(record, version, target, Mode.AGENT_LEVEL, job.job_id, now, job, changed)

    def _start_rollout(
        self,
        record: DeploymentRecord,
        version: VersionRecord,
        target: Manifest,
        mode: Mode,
        job_id: str,
        now: float,
        source: Job | None = None,
        changed: tuple[str, ...] = (),
    ) -> Journal:
        steps = plan(mode, target, changed)
        if mode is Mode.INITIAL:
            self._fleet.jobs[target.key] = Job(job_id, target.topology)
            record.current_job_id = job_id
        elif mode is Mode.BLUE_GREEN:
            record.strategy = "blue-green"
        record.mode = mode
        record.source_job_id = source.job_id if source else None
        record.target_job_id = job_id
        record.changed_agent_ids = changed or target.agent_ids()
        record.canary_agent_ids = steps.trial if mode is Mode.AGENT_LEVEL else ()
        record.remaining_agent_ids = steps.rolling
        record.counters = Counters(
            desired_total=len(record.changed_agent_ids), desired_canaries=len(record.canary_agent_ids)
        )
        version = replace(version, job_id=job_id)
        self._store.save_version(version)
        rollout = Rollout(self, self._touched, record, version, job_id, target, mode, steps, steps.rolling)
        rollout.set(now, description=rollout.running_description())
        if mode is Mode.INITIAL:
            rollout.event("deployment_created", now, job_id=job_id, version=version.version)
        elif mode is Mode.BLUE_GREEN:
            rollout.event("deployment_started", now, version=version.version, target_job_id=job_id, mode="blue_green")
        else:
            rollout.event("deployment_started", now, version=version.version, changed_agent_ids=list(changed))
        self._activate(rollout)
        rollout.start(now)
        return rollout

    def _activate(self, rollout: Rollout) -> None:
        self._active[rollout.deployment_id] = rollout
        self._active_by_key[rollout.key] = rollout

    def _batch_initial(
        self, record: DeploymentRecord, version: VersionRecord, target: Manifest, job_id: str, now: float
    ) -> Journal:
        """R3b: a batch job is not health gated, so its first deploy is stable as soon as it is placed."""
        record.target_job_id = job_id
        journal = Journal(record, self._touched)
        journal.event("deployment_created", now, job_id=job_id, version=version.version)
        self._place_batch(record, target, job_id, "initial", now)
        self._succeed(journal, version, job_id, now, SUCCESSFUL)
        journal.event("deployment_successful", now, job_id=job_id, version=version.version)
        return journal

    def _rerun(
        self, record: DeploymentRecord, version: VersionRecord, target: Manifest, job_id: str, now: float
    ) -> Journal:
        """R3 step 1: batch jobs keep a versioned rerun history; nothing rolls and earlier jobs run on."""
        version = replace(version, job_id=job_id)
        self._store.save_version(version)
        record.mode = "rerun"
        journal = Journal(record, self._touched)
        journal.set(
            now,
            status="version_recorded",
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
        job = Job(job_id, target.topology)
        for agent_id in target.agents:
            instance_id = f"{record.deployment_id}.{agent_id}.0"
            job.primaries[agent_id] = self._launch(
                record, target, agent_id, Role.PRIMARY, job_id, phase, instance_id, now
            )
        record.counters = Counters(desired_total=len(job.primaries), placed=len(job.primaries))
        self._fleet.jobs[target.key] = job

    def _noop(self, record: DeploymentRecord, version: VersionRecord, job: Job, now: float) -> Journal:
        """R3 step 2: every agent already has a live instance at the target spec; stable at once."""
        record.mode = "noop"
        journal = Journal(record, self._touched)
        self._succeed(journal, version, job.job_id, now, NOOP)
        journal.event("deployment_noop", now, version=version.version)
        return journal

    def _succeed(self, journal: Journal, version: VersionRecord, job_id: str, now: float, description: str) -> None:
        """Mark the version stable and the record successful, serving from `job_id`."""
        stamp = iso_timestamp(now)
        self._store.save_version(replace(version, job_id=job_id, stable=True, updated_at=stamp))
        journal.set(
            now,
            status="successful",
            description=description,
            current_job_id=job_id,
            stable_job_id=job_id,
            current_version=version.version,
            stable_version=version.version,
            health={"job_status": "running", "updated_at": stamp},
        )

    # ---- the Actuator port the rollouts drive -------------------------------------------------

    def place(self, rollout: Rollout, agent_id: str, role: Role, now: float) -> Instance:
        job = self._fleet.jobs[rollout.key]
        if role is Role.PRIMARY and rollout.mode is Mode.AGENT_LEVEL and agent_id in job.primaries:
            self.stop(job.primaries[agent_id], now)
        instance_id = f"{rollout.deployment_id}.{agent_id}.{rollout.attempt(agent_id)}"
        phase = _PHASES[(rollout.mode, role)]
        record = rollout.record
        instance = self._launch(record, rollout.manifest, agent_id, role, rollout.job_id, phase, instance_id, now)
        if role is Role.PRIMARY:
            job.primaries[agent_id] = instance
        return instance

    def stop(self, instance: Instance, now: float) -> None:
        if self._fleet.remove(instance.instance_id) is None:
            return
        instance.stopped(now)
        self._changed_instances[instance.instance_id] = instance
        self._removed_instances.add(instance.instance_id)
        self._health.forget(instance.instance_id)
        self._registry.deregister(instance.instance_id)
        self._runtime.stop(instance.instance_id)

    def promote_trial(self, rollout: Rollout, trial: builtins.list[Instance], now: float) -> None:
        self._registry.promote(rollout.key, rollout.version.version)
        job = self._fleet.jobs[rollout.key]
        for instance in trial:
            instance.promoted(now)
            self._changed_instances[instance.instance_id] = instance
        if rollout.mode is Mode.BLUE_GREEN:
            self._fleet.jobs[rollout.key] = Job(
                rollout.job_id, rollout.manifest.topology, {i.agent_id: i for i in trial}
            )
            for old in job.primaries.values():
                self.stop(old, now)
            rollout.record.current_job_id = rollout.job_id
            return
        for instance in trial:
            replaced = job.primaries.get(instance.agent_id)
            if replaced is not None:
                self.stop(replaced, now)
            job.primaries[instance.agent_id] = instance

    def deadline_moved(self, rollout: Rollout) -> None:
        at = rollout.record.require_progress_by_ms
        if at is not None:
            heapq.heappush(self._deadlines, (at, next(self._seq), rollout.deployment_id))

    def succeeded(self, rollout: Rollout, now: float) -> None:
        self._succeed(rollout, rollout.version, rollout.job_id, now, SUCCESSFUL)
        rollout.event("deployment_successful", now, job_id=rollout.job_id, version=rollout.version.version)
        self._retire(rollout)

    def failed(self, rollout: Rollout, now: float, description: str) -> None:
        self._fail(rollout, now, description, None)

    # ---- failure and auto-revert (R10) ---------------------------------------------------------

    def _fail(self, rollout: Rollout, now: float, base: str, reason: str | None) -> None:
        suffix, target = self._revert_target(rollout)
        rollout.end(now, "failed", base + suffix, "deployment_failed", reason=reason or base)
        self._retire(rollout)
        if target is None:
            return
        rollout.set(now, reverted_to_version=target.version)
        rollout.event("deployment_reverted", now, to_version=target.version)
        rollback = {"from_version": rollout.version.version, "to_version": target.version, "reason": base}
        self._start(_manifest_of(target), now, "auto_revert", rollback, revert_of=rollout)

    def _revert_target(self, rollout: Rollout) -> tuple[str, VersionRecord | None]:
        """The description suffix, and the version to redeploy when the spec differs."""
        if not rollout.policy.auto_revert:
            return "", None
        failed = rollout.version.version
        stable = [v for v in self._store.list_versions(rollout.key) if v.stable and v.version != failed]
        if not stable:
            return " - no stable version to auto revert to", None
        target = stable[-1]
        if target.spec_digest == rollout.manifest.spec_digest:
            return (
                f" - not rolling back to stable version {target.version} as it has the same specification",
                None,
            )
        return f" - rolling back to version {target.version}", target

    # ---- internals -----------------------------------------------------------------------------

    def _launch(
        self,
        record: DeploymentRecord,
        manifest: Manifest,
        agent_id: str,
        role: Role,
        job_id: str,
        phase: str,
        instance_id: str,
        now: float,
    ) -> Instance:
        """Place one instance: fleet, health tracking, discovery entries (not passing yet), runtime."""
        agent = manifest.agents[agent_id]
        key, version = record.deployment_key, record.target_version or ""
        policy = manifest.policy
        instance = Instance(instance_id, agent, job_id, key, record.deployment_id, version, role, now)
        self._fleet.add(instance)
        self._changed_instances[instance_id] = instance
        checks = len(agent.checks) if policy.health_check == "checks" else 0
        self._health.track(instance_id, now, policy.min_healthy_ms, manifest.healthy_deadline_ms, checks)
        for name in agent.services:
            self._registry.register(
                ServiceInstance(name, instance_id, agent_id, job_id, record.deployment_id, key, version, str(role))
            )
        self._runtime.place(
            Placement(
                instance_id=instance_id,
                agent_id=agent_id,
                job_id=job_id,
                deployment_key=key,
                deployment_id=record.deployment_id,
                deployment_version=version,
                role=role,
                phase=phase,
                spec_digest=agent.digest,
                node=agent.node,
                checks=agent.checks,
                restart=manifest.restart,
                bundle=manifest.bundle,
                batch=not manifest.long_running,
            )
        )
        return instance

    def _on_verdict(self, instance: Instance, verdict: Verdict, now: float) -> None:
        instance.judged(verdict is Verdict.HEALTHY, now)
        self._changed_instances[instance.instance_id] = instance
        self._update_serving(instance, now)
        rollout = self._active.get(instance.deployment_id)
        if rollout is not None and rollout.owns(instance):
            rollout.on_verdict(instance, verdict, now)

    def _update_serving(self, instance: Instance, now: float) -> None:
        """Discovery's passing flag follows the tracker; it is stored so a restart knows it too."""
        serving = self._health.serving(instance.instance_id)
        if serving != instance.serving:
            instance.passing(serving, now)
            self._changed_instances[instance.instance_id] = instance
            self._registry.set_passing(instance.instance_id, serving)

    def _next_deadline(self) -> float | None:
        deadlines = self._deadlines
        while deadlines:
            at, _, dep_id = deadlines[0]
            rollout = self._active.get(dep_id)
            if rollout is not None and rollout.deadline_enforced and rollout.record.require_progress_by_ms == at:
                return at
            heapq.heappop(deadlines)
        return None

    def _deadline_due(self, at: float) -> None:
        _, _, dep_id = heapq.heappop(self._deadlines)
        rollout = self._active[dep_id]
        if rollout.deadline_passed(at):
            self._fail(rollout, at, FAILED_DEADLINE, None)

    def _retire(self, rollout: Rollout) -> None:
        self._active.pop(rollout.deployment_id, None)
        if self._active_by_key.get(rollout.key) is rollout:
            del self._active_by_key[rollout.key]

    def _current_record(self, key: str) -> DeploymentRecord | None:
        current = self._store.current_deployment_id(key)
        return self._store.load_deployment(current) if current else None

    def _active_rollout(self, id_or_key: str, participle: str) -> Rollout:
        record = self.get(id_or_key)
        rollout = self._active.get(record.deployment_id)
        if rollout is None:
            raise RefusedError(f"deployment {record.deployment_id} is {record.status}; it can't be {participle}")
        return rollout

    def _saved(self, journal: Journal) -> DeploymentRecord:
        self._flush()
        return journal.record.snapshot()

    def _flush(self) -> None:
        """Save what this call changed: instances first, so a record never names progress that is not stored."""
        if self._changed_instances or self._removed_instances:
            changed = [i.to_record() for i in self._changed_instances.values()]
            self._store.save_instances(changed, sorted(self._removed_instances))
            self._changed_instances.clear()
            self._removed_instances.clear()
        for journal in self._touched.values():
            journal.record.revision = self._store.save_deployment(journal.record, journal.unsaved)
            journal.unsaved = []
        self._touched.clear()


_LIFECYCLE: dict[FactKind, Callable[[Instance, float], None]] = {
    FactKind.RUNNING: Instance.ran,
    FactKind.RESTARTED: Instance.restarted,
    FactKind.COMPLETED: Instance.completed,
    FactKind.FAILED: Instance.gave_up,
}
"""What a raw fact records on the instance's lifecycle; the others count through health verdicts."""


def _manifest_of(version: VersionRecord) -> Manifest:
    """A stored version as a manifest again, with the payload bundle it shipped with."""
    bundle = version.manifest_ref.get("bundle_fingerprint") if version.manifest_ref else None
    return load_manifest(version.manifest, bundle=bundle)


def _fast_revert(target: Manifest, max_parallel: int) -> Manifest:
    """An auto-revert skips canaries and promotion (the target was proven) and keeps the failed max_parallel."""
    strategy = "rolling" if target.policy.strategy == "canary" else target.policy.strategy
    policy = replace(target.policy, canary=0, auto_promote=False, max_parallel=max_parallel, strategy=strategy)
    return replace(target, policy=policy)


def _same_target(active: Rollout, target: Manifest) -> bool:
    """R3 step 0: `target` asks for nothing `active` is not already doing. An agent-level route is shaped by
    its policies (canaries, budget, reschedules), so there they must match too."""
    if active.manifest.spec_digest != target.spec_digest:
        return False
    return active.mode is not Mode.AGENT_LEVEL or _policies(active.manifest) == _policies(target)


def _policies(manifest: Manifest) -> tuple[object, ...]:
    return manifest.policy, manifest.restart, manifest.reschedule
