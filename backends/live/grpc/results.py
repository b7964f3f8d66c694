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

# Paths that finish without a rollout answer without `status` in MirrorNeuron.
_NO_STATUS_MODES = frozenset({"noop", "rerun"})


def encode(result: Mapping[str, Any]) -> str:
    return json.dumps({**result, "version": result.get("version", INTERFACE_VERSION)})


def version_json(version: VersionRecord, fingerprint: str | None) -> dict[str, Any]:
    """The version record; `manifest_ref.bundle_fingerprint` when its payloads were archived."""
    data = version.to_json()
    if fingerprint is not None:
        data["manifest_ref"] = {**data["manifest_ref"], "bundle_fingerprint": fingerprint}
    return data


def started(record: DeploymentRecord, version: VersionRecord, fingerprint: str | None) -> dict[str, Any]:
    """Deploy, update, promote and rollback: `{deployment, version, job_id, status}`."""
    result: dict[str, Any] = {
        "deployment": record.to_json(),
        "version": version_json(version, fingerprint),
        "job_id": version.job_id,
    }
    if record.mode not in _NO_STATUS_MODES:
        result["status"] = record.status
    return result


def with_versions(
    record: DeploymentRecord, versions: Sequence[VersionRecord], fingerprints: Mapping[str, str | None]
) -> dict[str, Any]:
    """Get: the record plus every version of its key, sorted by integer (the store's order)."""
    return {**record.to_json(), "versions": [version_json(v, fingerprints[v.version]) for v in versions]}


def listing(records: Sequence[DeploymentRecord]) -> dict[str, Any]:
    return {"data": [record.to_json() for record in records]}
