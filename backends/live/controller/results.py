"""The `result_json` of each deployment RPC, shaped as MirrorNeuron's (reference §4 "Results", §14).

MirrorNeuron's later handlers add a top-level `"version": 1` to every result that has no `version` key; the
CLI reads ids and the version from the top level, so we keep that envelope as it is (quirk §16.12).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from mn_deploy_core.records import DeploymentRecord, VersionRecord

INTERFACE_VERSION = 1

VERSIONS_SHOWN = 100
"""Versions a GetDeployment reply lists (the newest), so a key's long history keeps its reply small."""
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


def listing(records: Sequence[DeploymentRecord], limit: int) -> dict[str, Any]:
    """A page of records, each without its manifest and events (get one for those); `next` is the id to ask for
    the following page after, or null on the last page."""
    rows = [{k: v for k, v in r.to_json().items() if k not in _HEAVY_RECORD_FIELDS} for r in records]
    return {"data": rows, "next": records[-1].deployment_id if len(records) == limit else None}


def summary(version: VersionRecord) -> dict[str, Any]:
    """A version without its manifest."""
    return {k: v for k, v in version.to_json().items() if k != "manifest"}
