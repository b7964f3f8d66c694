"""Carrying out decisions on instances: placements, stops and promotions through the Runtime and Registry
ports, with the fleet, health tracking and every instance's lifecycle kept in step.

Each instance's lifecycle is recorded here, where it happens, whoever owns the instance (R8, R14); what a
call changed is handed to the store as a batch at the end of the call (`take_changes`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from mn_deploy_core.fleet import Fleet, Instance, Job
from mn_deploy_core.health import HealthTracker, Verdict
from mn_deploy_core.manifest import Manifest
from mn_deploy_core.ports import Fact, FactKind, Placement, Registry, Role, Runtime, ServiceInstance
from mn_deploy_core.records import DeploymentRecord

if TYPE_CHECKING:
    from mn_deploy_core.effects import Place
    from mn_deploy_core.rollout import Rollout

_LIFECYCLE: dict[FactKind, Callable[[Instance, float], None]] = {
    FactKind.RUNNING: Instance.ran,
    FactKind.RESTARTED: Instance.restarted,
    FactKind.COMPLETED: Instance.completed,
    FactKind.FAILED: Instance.gave_up,
}
"""What a raw fact records on the instance's lifecycle; the others count through health verdicts."""


class Actuator:
    def __init__(self, runtime: Runtime, registry: Registry, fleet: Fleet, health: HealthTracker) -> None:
        self._runtime = runtime
        self._registry = registry
        self.fleet = fleet
        self._health = health
        self._changed: dict[str, Instance] = {}
        self._removed: set[str] = set()

    def launch(
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
        self.fleet.add(instance)
        self._changed[instance_id] = instance
        checks = len(agent.checks) if policy.health_check == "checks" else 0
        self._health.track(instance_id, now, policy.min_healthy_ms, manifest.healthy_deadline_ms, checks)
        for name in agent.services:
            self._registry.register(
                ServiceInstance(name, instance_id, agent_id, job_id, record.deployment_id, key, version, role.value)
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

    def place(self, rollout: Rollout, place: Place, now: float) -> None:
        """A rollout's placement; a new primary replaces the agent's current one (R5: destructive)."""
        job = self.fleet.jobs[rollout.key]
        if place.role is Role.PRIMARY and place.agent_id in job.primaries:
            self.stop(job.primaries[place.agent_id], now)
        instance = self.launch(
            rollout.record, rollout.manifest, place.agent_id, place.role, rollout.job_id, place.phase,
            place.instance_id, now,
        )  # fmt: skip
        if place.role is Role.PRIMARY:
            job.primaries[place.agent_id] = instance

    def stop(self, instance: Instance, now: float) -> None:
        if self.fleet.remove(instance.instance_id) is None:
            return
        instance.stopped(now)
        self._changed[instance.instance_id] = instance
        self._removed.add(instance.instance_id)
        self._health.forget(instance.instance_id)
        self._registry.deregister(instance.instance_id)
        self._runtime.stop(instance.instance_id)

    def stop_id(self, instance_id: str, now: float) -> None:
        instance = self.fleet.instances.get(instance_id)
        if instance is not None:
            self.stop(instance, now)

    def promote(self, rollout: Rollout, instance_ids: tuple[str, ...], now: float) -> None:
        """Trial instances become primary; what they ran beside stops: the agent's old primary, or the whole
        old job when the trial was a new job (blue-green, R7)."""
        self._registry.promote(rollout.key, rollout.version.version)
        trial = [self.fleet.instances[i] for i in instance_ids if i in self.fleet.instances]
        for instance in trial:
            instance.promoted(now)
            self._changed[instance.instance_id] = instance
        job = self.fleet.jobs[rollout.key]
        if job.job_id != rollout.job_id:
            self.fleet.jobs[rollout.key] = Job(
                rollout.job_id, rollout.manifest.topology, {i.agent_id: i for i in trial}
            )
            for old in job.primaries.values():
                self.stop(old, now)
            rollout.set(now, current_job_id=rollout.job_id)
            return
        for instance in trial:
            replaced = job.primaries.get(instance.agent_id)
            if replaced is not None:
                self.stop(replaced, now)
            job.primaries[instance.agent_id] = instance

    def observe(self, instance: Instance, fact: Fact, now: float) -> Verdict | None:
        """Record what the fact says of the lifecycle; the verdict it brings, if any."""
        record = _LIFECYCLE.get(fact.kind)
        if record is not None:
            record(instance, now)
            self._changed[instance.instance_id] = instance
        verdict = self._health.observe(fact, now)
        if verdict is None:
            self._update_serving(instance, now)
        return verdict

    def judged(self, instance: Instance, verdict: Verdict, now: float) -> None:
        instance.judged(verdict is Verdict.HEALTHY, now)
        self._changed[instance.instance_id] = instance
        self._update_serving(instance, now)

    def restored(self, instance: Instance) -> None:
        """An instance a previous controller placed: discovery is told what it was last known to do."""
        self.fleet.add(instance)
        self._registry.set_passing(instance.instance_id, instance.serving)

    def discard(self, instance: Instance, now: float) -> None:
        """A stored instance a takeover cannot adopt is stopped as any other: the runtime stops it, discovery
        drops it and the call's commit removes its record."""
        self.fleet.add(instance)
        self.stop(instance, now)

    @property
    def unsaved(self) -> bool:
        """Whether an instance changed since the last `take_changes` (a stop is a change too)."""
        return bool(self._changed)

    def take_changes(self) -> tuple[list[Instance], list[str]]:
        """The instances changed since the last call, and the ids stopped (their last state is among the
        changed), emptied."""
        changed = list(self._changed.values())
        removed = sorted(self._removed)
        self._changed.clear()
        self._removed.clear()
        return changed, removed

    def _update_serving(self, instance: Instance, now: float) -> None:
        """Discovery's passing flag follows the tracker; it is stored so a restart knows it too."""
        serving = self._health.serving(instance.instance_id)
        if serving != instance.serving:
            instance.passing(serving, now)
            self._changed[instance.instance_id] = instance
            self._registry.set_passing(instance.instance_id, serving)
