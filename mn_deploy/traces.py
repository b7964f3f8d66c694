"""A live rollout history read from the controller's Redis as a trace (docs/traces.md), for `deployment export`,
`deployment plot` and whoever compares a live rollout with a simulated one (replay, calibration, plan).

A key names its whole retained history; a deployment id the key's history up to that deployment, and the
auto-revert it triggered (a failed version's trace includes its revert). Times are milliseconds after the first
recorded input, whose wall-clock moment is the trace's `origin`. Reading writes nothing (backends/redis_key_state.py).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import redis

from backends.redis.keys import Keys, namespace_from_env
from backends.redis.recorder import read_inputs
from backends.redis.store import RedisStore
from backends.redis_key_state import key_deployments, key_versions
from mn_deploy_core.records import DeploymentRecord, deployment_number
from mn_deploy_core.trace import Input, assemble

log = logging.getLogger(__name__)


class UnknownHistory(LookupError):
    """Neither a deployment id nor a key with deployments; `message` is one line."""

    def __init__(self, key_or_id: str) -> None:
        self.message = f"no deployment or deployment key {key_or_id!r} is recorded"
        super().__init__(self.message)


def read_trace(client: redis.Redis, key_or_id: str, namespace: str | None = None) -> dict[str, Any]:
    """The trace of `key_or_id` (a deployment id first, then a key); UnknownHistory when there is neither. Its
    `complete` is false, and `cut` names the deployments, when a stream was trimmed by its cap."""
    keys = Keys(namespace or namespace_from_env())
    store = RedisStore(client, namespace=keys.namespace)  # its single reads only: its lists heal, a write
    skipped: list[str] = []
    records = _history(client, keys, store, key_or_id, skipped)
    inputs: list[Input] = []
    cut: list[str] = []
    for record in records:
        recorded = read_inputs(client, keys, record.deployment_id)
        inputs += recorded.inputs
        if recorded.cut:
            cut.append(record.deployment_id)
    wanted = {record.deployment_id for record in records}
    key = records[0].deployment_key
    origin_ms = min((i.t_ms for i in inputs), default=min(_first_event_ms(store, r) for r in records))
    trace = assemble(
        source="live",
        deployments=[(r, store.deployment_events(r.deployment_id)) for r in records],
        versions=[v for v in key_versions(client, keys, key, skipped) if v.deployment_id in wanted],
        inputs=inputs,
        lives=[life for r in records for life in store.instance_lives(r.deployment_id)],
        origin_ms=origin_ms,
        origin=datetime.fromtimestamp(origin_ms / 1000.0, UTC).isoformat(timespec="milliseconds"),
    )
    if cut:
        trace["complete"] = False
        trace["cut"] = cut
    for line in skipped:
        log.warning("skipping %s", line)
    return trace


def _history(
    client: redis.Redis, keys: Keys, store: RedisStore, key_or_id: str, skipped: list[str]
) -> list[DeploymentRecord]:
    """The deployments a key or id names, in creation order."""
    chosen = store.load_deployment(key_or_id)
    key = key_or_id if chosen is None else chosen.deployment_key
    deployments = key_deployments(client, keys, key, skipped)
    records = sorted(deployments, key=lambda r: deployment_number(r.deployment_id))
    if not records:
        raise UnknownHistory(key_or_id)
    if chosen is None:
        return records
    upto = deployment_number(chosen.deployment_id)
    kept = [r for r in records if deployment_number(r.deployment_id) <= upto]
    later = [r for r in records if deployment_number(r.deployment_id) > upto]
    if chosen.reverted_to_version is not None and later and _created_by(store, later[0]) == "auto_revert":
        kept.append(later[0])
    return kept


def _created_by(store: RedisStore, record: DeploymentRecord) -> str | None:
    version = store.load_version(record.deployment_key, record.target_version or "")
    return None if version is None else version.created_by


def _first_event_ms(store: RedisStore, record: DeploymentRecord) -> float:
    """A history without any recorded input (written before recording began) starts at its first event."""
    events = store.deployment_events(record.deployment_id)
    return min((e.t_ms for e in events), default=0.0)
