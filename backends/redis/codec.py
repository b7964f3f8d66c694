"""Records to and from the JSON MirrorNeuron stores, and the error for a record that will not decode.

MirrorNeuron writes records without our additions: events without `t_ms`, versions without `deployment_id` and
`spec_digest`, no `revision`. Decoding fills those in, so its data reads as ours.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from mn_deploy_core.errors import DeploymentError
from mn_deploy_core.records import DeploymentRecord, Event, VersionRecord


class CorruptRecordError(DeploymentError):
    """A stored record that does not decode, or names another id, key or version than the key it sits at."""

    def __init__(self, kind: str, record_id: str, reason: str) -> None:
        super().__init__(f"{kind} {record_id} is corrupt: {reason}")
        self.kind = kind
        self.record_id = record_id
        self.reason = reason


def dumps(data: Mapping[str, Any]) -> str:
    """Canonical JSON: the stored bytes and the status stream's sha256 revision come from one encoding."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def encode_deployment(record: DeploymentRecord, revision: int) -> str:
    data = record.to_json()
    data["revision"] = revision
    return dumps(data)


def encode_event(event: Event) -> str:
    return dumps(event.to_json())


def encode_version(record: VersionRecord) -> str:
    return dumps(record.to_json())


def decode_deployment(deployment_id: str, raw: str) -> DeploymentRecord:
    try:
        data = json.loads(raw)
        data["events"] = [_with_t_ms(e) for e in data.get("events") or ()]
        record = DeploymentRecord.from_json(data)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CorruptRecordError("deployment", deployment_id, repr(exc)) from exc
    if record.deployment_id != deployment_id:
        raise CorruptRecordError("deployment", deployment_id, f"it holds {record.deployment_id!r}")
    return record


def decode_event(deployment_id: str, raw: str) -> Event:
    try:
        return Event.from_json(_with_t_ms(json.loads(raw)))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CorruptRecordError("event of deployment", deployment_id, repr(exc)) from exc


def decode_version(key: str, version: str, raw: str) -> VersionRecord:
    """A version must name its own key and version (reference §4), else it is invalid."""
    record_id = f"{key}@{version}"
    try:
        data = json.loads(raw)
        data.setdefault("deployment_id", "")
        data.setdefault("spec_digest", "")
        record = VersionRecord.from_json(data)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CorruptRecordError("version", record_id, repr(exc)) from exc
    if (record.deployment_key, record.version) != (key, version):
        found = f"{record.deployment_key}@{record.version}"
        raise CorruptRecordError("version", record_id, f"it holds {found!r}")
    return record


def _with_t_ms(event: dict[str, Any]) -> dict[str, Any]:
    """MirrorNeuron events carry only an ISO timestamp; its epoch milliseconds stand in for `t_ms`."""
    if "t_ms" not in event:
        moment = datetime.fromisoformat(str(event["timestamp"]))
        event = {**event, "t_ms": moment.timestamp() * 1000.0}
    return event
