"""Taking over from a previous controller: live instances, each key's current job and every active deployment
are rebuilt from the store, so a restarted or standby controller goes on where the last one stopped.

Deadlines are those stored. A healthy instance that was serving counts as ready and passing until a fact says
otherwise; any other needs the runtime to report its current facts again.

The store may hold a partial picture (a crash between the writes of one commit, a record that did not read), and a
controller that cannot take over leaves nobody leading, so a takeover repairs what it finds and says so, one line
per repair (`Takeover.repairs`):

- an instance whose deployment or version is not stored, or whose agent its version does not have, cannot be
  adopted: it is stopped through the runtime and its record removed, as any stop;
- an active deployment whose target version is not stored cannot go on: it fails (`FAILED_VERSION_MISSING`) in
  the takeover's commit, without an auto-revert; its instances, at that version, were stopped as above;
- a key whose current pointer names no stored deployment takes its current job from its newest stored one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from mn_deploy_core.actuator import Actuator
from mn_deploy_core.errors import DeploymentError
from mn_deploy_core.fleet import Instance, Job
from mn_deploy_core.health import HealthTracker, Verdict
from mn_deploy_core.manifest import AgentSpec, Manifest
from mn_deploy_core.policy import normalize
from mn_deploy_core.ports import Role, Store
from mn_deploy_core.records import DeploymentRecord, InstanceRecord, VersionRecord, deployment_number
from mn_deploy_core.rollout import Journal, Rollout
from mn_deploy_core.routing import manifest_of
from mn_deploy_core.status import FAILED_VERSION_MISSING, Trigger
from mn_deploy_core.strategies import planner_of


@dataclass(slots=True)
class Takeover:
    """What a takeover rebuilt: the active deployments' rollouts, for the controller to go on with, and a
    line for each inconsistency of the store it repaired."""

    rollouts: list[Rollout] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)


class _Orphan(Exception):
    """A stored instance that cannot be adopted, and why."""


class _Versions:
    """Stored versions and their manifests, each read once; a missing one is remembered as missing."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._read: dict[tuple[str, str], VersionRecord | None] = {}
        self._manifests: dict[tuple[str, str], Manifest] = {}

    def find(self, key: str, version: str) -> VersionRecord | None:
        """The stored version, or None, also for one that does not read or whose manifest no longer loads (a
        store's corrupt record, a manifest stored before a validation rule was added); a found one's manifest is
        kept for `manifest`."""
        if (key, version) not in self._read:
            try:
                stored = self._store.load_version(key, version)
                if stored is not None:
                    self._manifests[(key, version)] = manifest_of(stored)
            except DeploymentError:
                stored = None
            self._read[(key, version)] = stored
        return self._read[(key, version)]

    def manifest(self, key: str, version: str) -> Manifest:
        """The manifest of a version `find` found."""
        return self._manifests[(key, version)]


def restore(
    store: Store, actuator: Actuator, health: HealthTracker, touched: dict[str, Journal], now: float
) -> Takeover:
    """Rebuild the fleet and health tracking, and the active deployments' rollouts, each with what it placed
    adopted; repair what the store lacks on the way (module docstring)."""
    records = {r.deployment_id: r for r in store.list_deployments()}
    versions = _Versions(store)
    taken = Takeover()
    adopted: dict[str, list[Instance]] = {}
    for stored in store.list_instances():
        try:
            manifest, agent = _spec(stored, records, versions)
        except _Orphan as orphan:
            taken.repairs.append(_discard(actuator, stored, str(orphan), now))
            continue
        instance = _adopt(stored, manifest, agent, health, actuator)
        adopted.setdefault(stored.deployment_id, []).append(instance)
    fleet = actuator.fleet
    for key in dict.fromkeys(i.deployment_key for i in fleet.instances.values()):
        current = _current_record(store, key, records, taken.repairs)
        job = _current_job(key, current, list(fleet.instances.values()), versions)
        if job is not None:
            fleet.jobs[key] = job
    for record in (r for r in records.values() if r.active):
        key, target_version = record.deployment_key, record.target_version or ""
        version = versions.find(key, target_version)
        if version is None:
            taken.repairs.append(_fail_without_version(record, touched, now))
            continue
        rollout = _rollout(actuator, touched, record, version, versions.manifest(key, target_version))
        rollout.adopt(adopted.get(record.deployment_id, []))
        taken.rollouts.append(rollout)
    return taken


def _spec(
    stored: InstanceRecord, records: dict[str, DeploymentRecord], versions: _Versions
) -> tuple[Manifest, AgentSpec]:
    """The manifest (with its deployment's policy) and agent spec a stored instance runs; _Orphan when the store
    lacks one of them."""
    key, version = stored.deployment_key, stored.version
    record = records.get(stored.deployment_id)
    if record is None:
        raise _Orphan(f"its deployment {stored.deployment_id} is not in the store")
    if versions.find(key, version) is None:
        raise _Orphan(f"its version {version} is not in the store or does not load")
    manifest = replace(versions.manifest(key, version), policy=normalize(record.policy))
    agent = manifest.agents.get(stored.agent_id)
    if agent is None:
        raise _Orphan(f"version {version} has no agent {stored.agent_id}")
    return manifest, agent


def _adopt(
    stored: InstanceRecord, manifest: Manifest, agent: AgentSpec, health: HealthTracker, actuator: Actuator
) -> Instance:
    """A stored instance back in the fleet, its health tracked from what was last known of it."""
    policy = manifest.policy
    instance = Instance.from_record(stored, agent)
    verdict = None if stored.healthy is None else Verdict.HEALTHY if stored.healthy else Verdict.UNHEALTHY
    checks = agent.checks if policy.health_check == "checks" else ()
    health.restore(
        stored.instance_id,
        stored.placed_ms,
        policy.min_healthy_ms,
        manifest.healthy_deadline_ms,
        checks,
        verdict,
        stored.serving,
        completed=stored.completed_ms is not None,
    )
    actuator.restored(instance)
    return instance


def _discard(actuator: Actuator, stored: InstanceRecord, why: str, now: float) -> str:
    """Stop an instance that cannot be adopted, so no worker keeps running it and its record goes. Stopping
    needs only its id: a stand-in spec keeps the stored agent id and digest, so its last record reads as before."""
    agent = AgentSpec(agent_id=stored.agent_id, node_id="", node={}, digest=stored.spec_digest, checks=(), services=())
    actuator.discard(Instance.from_record(stored, agent), now)
    return f"stopped instance {stored.instance_id} of {stored.deployment_key}: {why}"


def _current_record(
    store: Store, key: str, records: dict[str, DeploymentRecord], repairs: list[str]
) -> DeploymentRecord | None:
    """The key's current deployment. A pointer to none that is stored (or that read) falls back to the key's
    newest: the one a pointer names when every write landed."""
    pointer = store.current_deployment_id(key)
    current = records.get(pointer or "")
    if current is not None:
        return current
    newest = max(
        (r for r in records.values() if r.deployment_key == key),
        key=lambda r: deployment_number(r.deployment_id),
        default=None,
    )
    if newest is not None:
        lost = f"its current deployment {pointer} is not in the store" if pointer else "it has no current deployment"
        repairs.append(f"key {key}: {lost}; its current job is taken from {newest.deployment_id}, its newest")
    return newest


def _current_job(
    key: str, current: DeploymentRecord | None, instances: list[Instance], versions: _Versions
) -> Job | None:
    job_id = current.current_job_id if current else None
    primaries = {
        i.agent_id: i for i in instances if i.deployment_key == key and i.job_id == job_id and i.role is Role.PRIMARY
    }
    if job_id is None or not primaries:
        return None
    some = next(iter(primaries.values()))
    manifest = versions.manifest(key, some.version)
    return Job(job_id, manifest.topology, primaries, manifest.long_running)


def _rollout(
    actuator: Actuator,
    touched: dict[str, Journal],
    record: DeploymentRecord,
    version: VersionRecord,
    manifest: Manifest,
) -> Rollout:
    key = record.deployment_key
    target = replace(manifest, policy=normalize(record.policy))
    chosen = planner_of(record.mode, record.strategy)
    steps = chosen.steps(target.policy, tuple(record.changed_agent_ids) or target.agent_ids())
    job_id = record.target_job_id or ""
    actuator.fleet.jobs.setdefault(key, Job(job_id, target.topology))
    return Rollout(touched, record, version, job_id, target, chosen, steps, record.remaining_agent_ids)


def _fail_without_version(record: DeploymentRecord, touched: dict[str, Journal], now: float) -> str:
    """An active deployment whose target version is gone cannot go on: it fails through the normal record path,
    so the takeover's commit saves it. No auto-revert: the failed spec is unknown, so a revert could not tell
    whether it differs; the operator may roll back."""
    missing = f"its version {record.target_version} is not in the store or does not load"
    journal = Journal(record, touched)
    journal.move(Trigger.FAIL, now, FAILED_VERSION_MISSING)
    journal.set(now, step_pause_until_ms=None)
    journal.event("deployment_failed", now, reason=missing)
    return f"failed deployment {record.deployment_id} of {record.deployment_key}: {missing}"
