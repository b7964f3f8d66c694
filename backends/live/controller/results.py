"""The `result_json` of each deployment RPC, shaped as MirrorNeuron's (reference §4 "Results", §14).

MirrorNeuron's later handlers add a top-level `"version": 1` to every result that has no `version` key; the
CLI reads ids and the version from the top level, so we keep that envelope as it is (quirk §16.12).
"""

from __future__ import annotations

import heapq
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from backends.redis.instance_runtime import RUNNING, ProcessInfo
from mn_deploy_core.records import DeploymentRecord, InstanceRecord, VersionRecord, iso_timestamp

INTERFACE_VERSION = 1

VERSIONS_SHOWN = 100
"""Versions a GetDeployment reply lists (the newest), so a key's long history keeps its reply small."""
INSTANCES_SHOWN = 1_000
"""Instance rows a GetDeployment reply lists at most (the first by agent id, then instance id), with
`instances_total` and `instance_counts` over all of them: a row is about 250 bytes, so even a deployment of
100,000 agents keeps its reply far below the 4 MiB cap (backends/protocol/sizes.py)."""
_HEAVY_RECORD_FIELDS = frozenset({"target_manifest", "events"})

# Paths that finish without a rollout answer without `status` in MirrorNeuron.
_NO_STATUS_MODES = frozenset({"noop", "rerun"})


def encode(result: Mapping[str, Any]) -> str:
    """Compact JSON."""
    return json.dumps({**result, "version": result.get("version", INTERFACE_VERSION)}, separators=(",", ":"))


def started(record: DeploymentRecord, version: VersionRecord) -> dict[str, Any]:
    """Deploy, update, promote and rollback: `{deployment, version, job_id, status}`. The manifest comes once, as
    the record's `target_manifest`; the version is its summary."""
    result: dict[str, Any] = {
        "deployment": record.to_json(),
        "version": summary(version),
        "job_id": version.job_id,
    }
    if record.mode not in _NO_STATUS_MODES:
        result["status"] = record.status
    return result


def with_versions(record: DeploymentRecord, versions: Sequence[VersionRecord]) -> dict[str, Any]:
    """Get: the record plus its key's newest VERSIONS_SHOWN versions as summaries, sorted by integer (the store's
    order), and how many there are. A version's full manifest is its deployment's `target_manifest`: get that
    deployment by the id its summary names. A version's `manifest_ref.bundle_fingerprint` names its payloads when it
    shipped any."""
    shown = versions[-VERSIONS_SHOWN:]
    return {**record.to_json(), "versions": [summary(v) for v in shown], "versions_total": len(versions)}


Where = tuple[str, ProcessInfo | None]
"""An instance's node and what its worker last told of its process (None: nothing yet, or not readable)."""


def shown_instances(records: Iterable[InstanceRecord]) -> list[InstanceRecord]:
    """The INSTANCES_SHOWN a reply lists: the first by agent id, then instance id."""
    return heapq.nsmallest(INSTANCES_SHOWN, records, key=lambda r: (r.agent_id, r.instance_id))


def with_instances(
    result: Mapping[str, Any],
    listed: Sequence[InstanceRecord],
    counted: Sequence[InstanceRecord],
    shown: Sequence[InstanceRecord],
    where: Mapping[str, Where],
) -> dict[str, Any]:
    """Get: `result` plus the key's instances (`listed`), the `shown` ones as rows (with the node and process of
    those `where` knows), how many there are, and how many of the deployment's own (`counted`) the controller
    sees in each outcome (healthy, running (no verdict yet), unhealthy, completed, failed)."""
    counts = Counter("failed" if r.failed else r.outcome for r in counted)
    return {
        **result,
        "instances": [instance_row(r, where.get(r.instance_id)) for r in shown],
        "instances_total": len(listed),
        "instance_counts": dict(sorted(counts.items())),
    }


def instance_row(record: InstanceRecord, where: Where | None) -> dict[str, Any]:
    """One instance as `deployment status` lists it: the controller's record with its worker's view. `restarts`
    is the controller's count, or the worker's while a restart's fact is on its way."""
    node, process = where or (None, None)
    state, since_ms = _state(record, process)
    return {
        "instance_id": record.instance_id,
        "agent_id": record.agent_id,
        "version": record.version,
        "role": record.role,
        "node": node,
        "pid": process.pid if process else None,
        "port": process.port if process else None,
        "state": state,
        "restarts": max(len(record.restart_ms), process.restarts if process else 0),
        "since": iso_timestamp(since_ms),
    }


def _state(record: InstanceRecord, process: ProcessInfo | None) -> tuple[str, float]:
    """The state a person wants to see and when it began: an end the controller recorded (failed, completed),
    else what the worker says of a process that does not run (starting, exited, failed), else the controller's
    verdict (healthy, unhealthy, or running before one), since the later of the verdict and the process start."""
    if record.failed:
        return "failed", record.unhealthy_ms or record.placed_ms
    if record.completed_ms is not None:
        return "completed", record.completed_ms
    if process is not None and process.state != RUNNING:
        return process.state, process.since_ms
    outcome = record.outcome
    since = {"unhealthy": record.unhealthy_ms, "healthy": record.healthy_ms}.get(outcome) or record.running_ms
    if since is None and process is None:
        return "placed", record.placed_ms
    return outcome, max(since or 0.0, process.since_ms if process else 0.0)


def listing(records: Sequence[DeploymentRecord], limit: int) -> dict[str, Any]:
    """A page of records, each without its manifest and events (get one for those); `next` is the id to ask for
    the following page after, or null on the last page."""
    rows = [{k: v for k, v in r.to_json().items() if k not in _HEAVY_RECORD_FIELDS} for r in records]
    return {"data": rows, "next": records[-1].deployment_id if len(records) == limit else None}


def summary(version: VersionRecord) -> dict[str, Any]:
    """A version without its manifest."""
    return {k: v for k, v in version.to_json().items() if k != "manifest"}
