"""Taking over from a previous controller: live instances, each key's current job and every active deployment
are rebuilt from the store, so a restarted or standby controller goes on where the last one stopped.

Deadlines are those stored. A healthy instance that was serving counts as ready and passing until a fact says
otherwise; any other needs the runtime to report its current facts again.
"""

from __future__ import annotations

from dataclasses import replace

from mn_deploy_core.actuator import Actuator
from mn_deploy_core.errors import NotFoundError
from mn_deploy_core.fleet import Instance, Job
from mn_deploy_core.health import HealthTracker, Verdict
from mn_deploy_core.manifest import Manifest
from mn_deploy_core.policy import normalize
from mn_deploy_core.ports import Role, Store
from mn_deploy_core.records import DeploymentRecord
from mn_deploy_core.rollout import Journal, Rollout
from mn_deploy_core.routing import manifest_of
from mn_deploy_core.strategies import planner_of


class _Manifests:
    """Stored versions as manifests, each loaded once."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._cache: dict[tuple[str, str], Manifest] = {}

    def __call__(self, key: str, version: str) -> Manifest:
        if (key, version) not in self._cache:
            stored = self._store.load_version(key, version)
            if stored is None:
                raise NotFoundError(f"{key} version {version}")
            self._cache[(key, version)] = manifest_of(stored)
        return self._cache[(key, version)]


def restore(store: Store, actuator: Actuator, health: HealthTracker, touched: dict[str, Journal]) -> list[Rollout]:
    """Rebuild the fleet and health tracking; the active deployments' rollouts, each with what it placed
    adopted, for the controller to activate and go on with."""
    records = {r.deployment_id: r for r in store.list_deployments()}
    manifests = _Manifests(store)
    adopted: dict[str, list[Instance]] = {}
    for stored in store.list_instances():
        record = records[stored.deployment_id]
        manifest = replace(manifests(stored.deployment_key, stored.version), policy=normalize(record.policy))
        policy = manifest.policy
        agent = manifest.agents[stored.agent_id]
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
        adopted.setdefault(stored.deployment_id, []).append(instance)
    fleet = actuator.fleet
    for key in {i.deployment_key for i in fleet.instances.values()}:
        current = store.load_deployment(store.current_deployment_id(key) or "")
        job = _current_job(key, current, list(fleet.instances.values()), manifests)
        if job is not None:
            fleet.jobs[key] = job
    rollouts = []
    for record in records.values():
        rollout = _rollout(store, actuator, touched, record, manifests) if record.active else None
        if rollout is not None:
            rollout.adopt(adopted.get(record.deployment_id, []))
            rollouts.append(rollout)
    return rollouts


def _current_job(
    key: str, current: DeploymentRecord | None, instances: list[Instance], manifests: _Manifests
) -> Job | None:
    job_id = current.current_job_id if current else None
    primaries = {
        i.agent_id: i for i in instances if i.deployment_key == key and i.job_id == job_id and i.role is Role.PRIMARY
    }
    if job_id is None or not primaries:
        return None
    some = next(iter(primaries.values()))
    return Job(job_id, manifests(key, some.version).topology, primaries)


def _rollout(
    store: Store, actuator: Actuator, touched: dict[str, Journal], record: DeploymentRecord, manifests: _Manifests
) -> Rollout | None:
    key, version_id = record.deployment_key, record.target_version or ""
    version = store.load_version(key, version_id)
    if version is None:
        return None
    target = replace(manifests(key, version_id), policy=normalize(record.policy))
    chosen = planner_of(record.mode, record.strategy)
    steps = chosen.steps(target.policy, tuple(record.changed_agent_ids) or target.agent_ids())
    job_id = record.target_job_id or ""
    actuator.fleet.jobs.setdefault(key, Job(job_id, target.topology))
    return Rollout(touched, record, version, job_id, target, chosen, steps, record.remaining_agent_ids)
