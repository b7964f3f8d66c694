"""The trace format (docs/traces.md): one rollout history as both worlds record it, so a simulated and a live
rollout are compared like with like.

A trace holds the inputs of the decisions (the manifests, the operator calls, every instance's raw facts, with
times) and the decisions themselves (each deployment's record and events, in the core's words). The core
names the inputs as it takes them in (`fact_entry`, `action_entry`, handed to a `Recorder`); a world keeps
them, and `assemble` turns what it kept into the file. `check_trace` reads a file back.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mn_deploy_core.ports import Fact, FactKind
from mn_deploy_core.records import DeploymentRecord, Event, InstanceRecord, VersionRecord, deployment_number

FORMAT = 1
"""Bumped whenever a reader of an older trace would misread a newer one."""

SOURCES = ("live", "sim")
VERBS = ("deploy", "promote", "pause", "resume", "fail", "rollback")


class TraceError(ValueError):
    """A trace file this version cannot read; `message` is one line naming where."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.message = f"{path}: {problem}"


def fact_entry(fact: Fact) -> dict[str, str]:
    """A raw fact as a trace keeps it."""
    entry = {"fact": fact.kind.value, "instance_id": fact.instance_id}
    if fact.check:
        entry["check"] = fact.check
    return entry


def action_entry(verb: str, **options: Any) -> dict[str, Any]:
    """An accepted operator call as a trace keeps it; options left unset are left out."""
    return {"action": verb, **{name: value for name, value in options.items() if value is not None}}


@dataclass(frozen=True, slots=True)
class Input:
    """One recorded entry, under the deployment it concerns, at the time the controller took it in."""

    deployment_id: str
    t_ms: float
    entry: Mapping[str, Any]


def manifest_name(key: str, version: str) -> str:
    """How a trace names the manifest of a version (behaviors fitted from a trace use the same names)."""
    return f"{key}@{version}"


def assemble(
    *,
    source: str,
    deployments: Sequence[tuple[DeploymentRecord, Sequence[Event]]],
    versions: Sequence[VersionRecord],
    inputs: Iterable[Input],
    lives: Iterable[InstanceRecord] = (),
    origin_ms: float,
    origin: str | None,
) -> dict[str, Any]:
    """The trace of these deployments (in creation order), the versions they deployed and their inputs.
    `lives`: the instances' lifecycles as the core recorded them (the last record of each, stopped ones too),
    kept beside their facts for plots; an instance without one has `life` null.

    Every time in the trace is milliseconds after `origin_ms` (the simulator's 0; the first call of a live
    history), and `origin` is that moment as an ISO timestamp (None for a simulation).
    """
    wanted = {record.deployment_id for record, _ in deployments}
    ordered = sorted(deployments, key=lambda d: (d[0].deployment_key, deployment_number(d[0].deployment_id)))
    kept = sorted((i for i in inputs if i.deployment_id in wanted), key=lambda i: i.t_ms)
    placed = {
        e.fields["instance_id"]: (record.deployment_id, e)
        for record, events in ordered
        for e in events
        if e.type == "deployment_instance_placed"
    }
    return {
        "format": FORMAT,
        "source": source,
        "origin": origin,
        "complete": all(deployment_number(r.deployment_id) == 1 for r in _firsts(ordered)),
        "manifests": {manifest_name(v.deployment_key, v.version): dict(v.manifest) for v in versions},
        "versions": [_version(v) for v in versions],
        "deployments": [_deployment(record, events, origin_ms) for record, events in ordered],
        "actions": [_action(i, origin_ms) for i in kept if "action" in i.entry],
        "instances": _instances(placed, (i for i in kept if "fact" in i.entry), lives, origin_ms),
    }


def _firsts(ordered: Sequence[tuple[DeploymentRecord, Sequence[Event]]]) -> list[DeploymentRecord]:
    firsts: dict[str, DeploymentRecord] = {}
    for record, _ in ordered:
        firsts.setdefault(record.deployment_key, record)
    return list(firsts.values())


def _version(version: VersionRecord) -> dict[str, Any]:
    return {
        "key": version.deployment_key,
        "version": version.version,
        "manifest": manifest_name(version.deployment_key, version.version),
        "spec_digest": version.spec_digest,
        "bundle_fingerprint": version.manifest_ref.get("bundle_fingerprint"),
        "created_by": version.created_by,
        "deployment_id": version.deployment_id,
        "tag": version.tag,
    }


def _deployment(record: DeploymentRecord, events: Sequence[Event], origin_ms: float) -> dict[str, Any]:
    data = record.to_json()
    data["events"] = [{**e.to_json(), "t_ms": e.t_ms - origin_ms} for e in events]
    return data


def _action(recorded: Input, origin_ms: float) -> dict[str, Any]:
    """An operator call in the scenario's words (`{"at_ms": .., "<verb>": target, ...}`), with the deployment
    it applied to or created."""
    entry = dict(recorded.entry)
    verb = entry.pop("action")
    target = entry.pop("target")
    return {"at_ms": recorded.t_ms - origin_ms, verb: target, **entry, "deployment_id": recorded.deployment_id}


def _instances(
    placed: Mapping[str, tuple[str, Event]], facts: Iterable[Input], lives: Iterable[InstanceRecord], origin_ms: float
) -> list[dict[str, Any]]:
    """Every placed instance with its facts, in placement order; facts of an instance placed before the trace
    begins come last, with what they say of it."""
    rows: dict[str, dict[str, Any]] = {}
    for instance_id, (deployment_id, event) in placed.items():
        rows[instance_id] = {
            "instance_id": instance_id,
            "deployment_id": deployment_id,
            "agent_id": event.fields.get("agent_id"),
            "version": event.fields.get("version"),
            "role": event.fields.get("role"),
            "placed_ms": event.t_ms - origin_ms,
            "facts": [],
            "life": None,
        }
    for recorded in facts:
        instance_id = recorded.entry["instance_id"]
        row = rows.setdefault(
            instance_id,
            {
                "instance_id": instance_id,
                "deployment_id": recorded.deployment_id,
                "agent_id": None,
                "version": None,
                "role": None,
                "placed_ms": None,
                "facts": [],
                "life": None,
            },
        )
        fact = {"t_ms": recorded.t_ms - origin_ms, "kind": recorded.entry["fact"]}
        if "check" in recorded.entry:
            fact["check"] = recorded.entry["check"]
        row["facts"].append(fact)
    for life in lives:
        if life.instance_id in rows:
            rows[life.instance_id]["life"] = {
                name: _shifted(value, origin_ms) if name.endswith("_ms") else value
                for name, value in life.to_json().items()
            }
    return list(rows.values())


def _shifted(value: Any, origin_ms: float) -> Any:
    """A time field of a record on the trace's clock: a time, or lists of times (intervals), None kept."""
    if isinstance(value, (int, float)):
        return value - origin_ms
    if isinstance(value, (list, tuple)):
        return [_shifted(item, origin_ms) for item in value]
    return value


_TOP = ("format", "source", "origin", "complete", "manifests", "versions", "deployments", "actions", "instances")
_KINDS = frozenset(kind.value for kind in FactKind)


def check_trace(data: Any) -> dict[str, Any]:
    """A parsed trace file, checked far enough that readers can trust its shape; TraceError otherwise."""
    if not isinstance(data, dict):
        raise TraceError("$", "a trace is a JSON object")
    if data.get("format") != FORMAT:
        raise TraceError("$.format", f"trace format {data.get('format')!r} is not supported (this reads {FORMAT})")
    missing = [name for name in _TOP if name not in data]
    if missing:
        raise TraceError("$", f"missing {', '.join(missing)}")
    if data["source"] not in SOURCES:
        raise TraceError("$.source", f"must be one of {', '.join(SOURCES)}")
    if not isinstance(data["manifests"], dict):
        raise TraceError("$.manifests", "must be an object")
    for name in ("versions", "deployments", "actions", "instances"):
        if not isinstance(data[name], list) or not all(isinstance(item, dict) for item in data[name]):
            raise TraceError(f"$.{name}", "must be a list of objects")
    for i, action in enumerate(data["actions"]):
        check_time(action.get("at_ms"), f"$.actions[{i}].at_ms")
        if sum(verb in action for verb in VERBS) != 1:
            raise TraceError(f"$.actions[{i}]", f"must have exactly one of {', '.join(VERBS)}")
    for i, instance in enumerate(data["instances"]):
        path = f"$.instances[{i}]"
        if not isinstance(instance.get("instance_id"), str) or not isinstance(instance.get("facts"), list):
            raise TraceError(path, "must have an instance_id and a list of facts")
        for j, fact in enumerate(instance["facts"]):
            if not isinstance(fact, dict) or not isinstance(fact.get("kind"), str) or fact["kind"] not in _KINDS:
                raise TraceError(f"{path}.facts[{j}].kind", f"must be one of {', '.join(sorted(_KINDS))}")
            check_time(fact.get("t_ms"), f"{path}.facts[{j}].t_ms")
    return data


def check_time(value: Any, path: str) -> None:
    """TraceError unless `value` is a finite number of milliseconds (readers of other parts check theirs alike)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TraceError(path, "must be a finite number of milliseconds")
