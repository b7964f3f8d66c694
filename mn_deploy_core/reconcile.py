"""Standing reconciliation (R16, ours): a key's current job keeps its agents running once no rollout tends them.

A rollout replaces its own unhealthy instances (R9). Outside it, a primary of the key's current service job that is lost
for good (its restarts used up, its node lost) is replaced at once by a new primary of the same spec in the same
job. The replacement is charged to the deployment that placed the lost one, against its reschedule budget
(`policies.reschedule.attempts` per agent over the deployment's life, shared with R9): an agent that keeps dying is
not replaced forever; with the budget spent it stays down, and its deployment's record says so. The loss, the
replacement's placement and its first verdict are events of that record (`deployment_instance_lost` names the
replacement, or says why there is none), so its status tells what runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from mn_deploy_core.actuator import Actuator
from mn_deploy_core.errors import DeploymentError
from mn_deploy_core.fleet import Instance
from mn_deploy_core.health import Verdict
from mn_deploy_core.manifest import Manifest
from mn_deploy_core.policy import normalize
from mn_deploy_core.ports import Role, Store
from mn_deploy_core.rollout import Journal
from mn_deploy_core.routing import manifest_of

REPLACEMENT = "replacement"
"""The phase of a replacement's placement."""


class Reconciler:
    """Tends the current service jobs' primaries that no active rollout owns."""

    def __init__(self, store: Store, actuator: Actuator, journal_of: Callable[[str], Journal | None]) -> None:
        """`journal_of`: the deployment's journal (an active rollout's, one this call touched, or the stored record)."""
        self._store = store
        self._actuator = actuator
        self._journal_of = journal_of
        self._unjudged: set[str] = set()  # replacements without a verdict yet (forgotten by a takeover)

    def judged(self, instance: Instance, verdict: Verdict, now: float) -> None:
        """A verdict on a primary no rollout owns: a current primary lost for good is replaced; a replacement's
        first verdict is recorded."""
        job = self._actuator.fleet.jobs.get(instance.deployment_key)
        if job is None or not job.long_running or job.primaries.get(instance.agent_id) is not instance:
            return
        if instance.failed:
            self._replace(instance, now)
        elif instance.instance_id in self._unjudged:
            self._unjudged.discard(instance.instance_id)
            journal = self._journal_of(instance.deployment_id)
            if journal is not None:
                healthy = verdict is Verdict.HEALTHY
                journal.set(now, counters=journal.record.counters.add(healthy=int(healthy), unhealthy=int(not healthy)))
                kind = "healthy" if healthy else "unhealthy"
                journal.event(f"deployment_instance_{kind}", now, **_naming(instance))

    def _replace(self, lost: Instance, now: float) -> None:
        journal = self._journal_of(lost.deployment_id)
        if journal is None:
            return
        self._unjudged.discard(lost.instance_id)
        agent_id, record = lost.agent_id, journal.record
        if _turned_unhealthy(lost, now):
            journal.set(now, counters=record.counters.add(healthy=-1, unhealthy=1))
        used = record.reschedules.get(agent_id, 0)
        manifest = self._manifest(lost)
        if manifest is None or used >= manifest.reschedule.attempts:
            reason = "reschedule attempts used up" if manifest is not None else "its version does not load"
            journal.event("deployment_instance_lost", now, **_naming(lost), reason=reason)
            return
        replacement_id = f"{record.deployment_id}.{agent_id}.{used + 1}"
        journal.set(now, reschedules={**record.reschedules, agent_id: used + 1}, counters=record.counters.add(placed=1))
        journal.event("deployment_instance_lost", now, **_naming(lost), replacement_id=replacement_id)
        self._actuator.stop(lost, now)
        job = self._actuator.fleet.jobs[lost.deployment_key]
        job.primaries[agent_id] = self._actuator.launch(
            record, manifest, agent_id, Role.PRIMARY, lost.job_id, REPLACEMENT, replacement_id, now
        )
        self._unjudged.add(replacement_id)
        journal.event(
            "deployment_instance_placed",
            now,
            instance_id=replacement_id,
            agent_id=agent_id,
            role=Role.PRIMARY.value,
            version=lost.version,
        )

    def _manifest(self, instance: Instance) -> Manifest | None:
        """The manifest the instance was placed from, with its deployment's policy (as a takeover reads it); None
        when its version is gone or no longer loads (stored before a validation rule it breaks)."""
        journal = self._journal_of(instance.deployment_id)
        try:
            version = self._store.load_version(instance.deployment_key, instance.version)
            manifest = None if version is None else manifest_of(version)
        except DeploymentError:
            manifest = None
        if manifest is None or journal is None:
            return None
        return replace(manifest, policy=normalize(journal.record.policy))


def _naming(instance: Instance) -> dict[str, str]:
    return {"instance_id": instance.instance_id, "agent_id": instance.agent_id}


def _turned_unhealthy(instance: Instance, now: float) -> bool:
    """Its healthy verdict ends with this loss: its deployment counted it healthy until now."""
    return instance.healthy_ms is not None and instance.unhealthy_ms == now
