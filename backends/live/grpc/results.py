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
    """Compact JSON: GetDeployment carries every version with its manifest."""
    return json.dumps({**result, "version": result.get("version", INTERFACE_VERSION)}, separators=(",", ":"))


def started(record: DeploymentRecord, version: VersionRecord) -> dict[str, Any]:
    """Deploy, update, promote and rollback: `{deployment, version, job_id, status}`."""
    result: dict[str, Any] = {
        "deployment": record.to_json(),
        "version": version.to_json(),
        "job_id": version.job_id,
    }
    if record.mode not in _NO_STATUS_MODES:
        result["status"] = record.status
    return result


def with_versions(record: DeploymentRecord, versions: Sequence[VersionRecord]) -> dict[str, Any]:
    """Get: the record plus every version of its key, sorted by integer (the store's order); a version's
    `manifest_ref.bundle_fingerprint` names its payloads when it shipped any."""
    return {**record.to_json(), "versions": [v.to_json() for v in versions]}


def listing(records: Sequence[DeploymentRecord]) -> dict[str, Any]:
    return {"data": [record.to_json() for record in records]}
