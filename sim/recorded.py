"""What a replay reads of a trace (docs/traces.md): the operator calls as scenario actions, each instance's
recorded facts, and each key's deployments in creation order with their decisions.

`check_trace` vouches for the trace's outline only; everything a replay goes on to read is checked here, so a
malformed trace is one `TraceError` naming its JSONPath, never a traceback halfway through a run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mn_deploy_core.errors import InvalidManifestError
from mn_deploy_core.manifest import load_manifest
from mn_deploy_core.ports import FactKind
from mn_deploy_core.records import deployment_number
from mn_deploy_core.status import TERMINAL
from mn_deploy_core.trace import TraceError, check_trace
from sim.actions import Action
from sim.schema import child

_TARGETED = ("promote", "pause", "resume", "fail")
"""Verbs whose target is a deployment id (a rollback names a key, a deploy a manifest)."""
_OPTIONS = {"deploy": ("overrides", "key"), "rollback": ("version", "tag", "reason")}
_IGNORED_IN_EVENTS = ("timestamp", "t_ms")
"""An event's own clock: times are compared apart, as skew."""


@dataclass(frozen=True, slots=True)
class RecordedInstance:
    instance_id: str
    placed_ms: float
    facts: tuple[tuple[float, FactKind, str], ...]
    """(t_ms, kind, check) in the order the controller took them in."""


@dataclass(frozen=True, slots=True)
class RecordedDeployment:
    deployment_id: str
    key: str
    active: bool
    """Still rolling out when the trace was written."""
    decisions: tuple[tuple[float, dict[str, Any]], ...]
    """Its events: (t_ms, the event without its times)."""


@dataclass(frozen=True, slots=True)
class Recording:
    """A trace, read for replay."""

    source: str
    complete: bool
    manifests: Mapping[str, Mapping[str, Any]]
    bundles: Mapping[str, str]
    """The payload fingerprint each manifest was deployed with (none for a manifest without payloads)."""
    actions: tuple[Action, ...]
    instances: Mapping[str, RecordedInstance]
    deployments: Mapping[str, tuple[RecordedDeployment, ...]]
    """Per key, in creation order."""
    end_ms: float
    """The last time the trace knows of."""
    cut: bool
    """Whether a deployment was still active when the trace was written: the replay's decisions after `end_ms`
    were then never recordable, and are not compared."""


def decision(event: Mapping[str, Any]) -> dict[str, Any]:
    """An event as replay compares it: type and fields, without its times."""
    return {name: value for name, value in event.items() if name not in _IGNORED_IN_EVENTS}


def read_recording(data: Any) -> Recording:
    """Read a parsed trace for replay; TraceError (one line, with a JSONPath) when it cannot be replayed."""
    trace = check_trace(data)
    deployments = _deployments(trace["deployments"])
    bundles = _bundles(trace["versions"])
    manifests = {name: _object(doc, child("$.manifests", name)) for name, doc in trace["manifests"].items()}
    actions = tuple(_action(a, child("$.actions", i), manifests, bundles) for i, a in enumerate(trace["actions"]))
    instances = _instances(trace["instances"])
    times = [a.at_ms for a in actions]
    times += [t for i in instances.values() for t, _, _ in i.facts]
    times += [t for ds in deployments.values() for d in ds for t, _ in d.decisions]
    return Recording(
        source=trace["source"],
        complete=trace["complete"] is True,
        manifests=manifests,
        bundles=bundles,
        actions=tuple(sorted(actions, key=lambda a: a.at_ms)),
        instances=instances,
        deployments=deployments,
        end_ms=max(times, default=0.0),
        cut=any(d.active for ds in deployments.values() for d in ds),
    )


def _object(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise TraceError(path, "must be an object")
    return value


def _text(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise TraceError(path, "must be a non-empty string")
    return value


def _time(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TraceError(path, "must be a finite number of milliseconds")
    return float(value)


def _deployments(rows: list[dict[str, Any]]) -> dict[str, tuple[RecordedDeployment, ...]]:
    by_key: dict[str, list[RecordedDeployment]] = {}
    seen: set[str] = set()
    for i, row in enumerate(rows):
        path = child("$.deployments", i)
        deployment_id = _text(row.get("deployment_id"), child(path, "deployment_id"))
        if deployment_id in seen:
            raise TraceError(child(path, "deployment_id"), f"{deployment_id} appears twice")
        seen.add(deployment_id)
        key = _text(row.get("deployment_key"), child(path, "deployment_key"))
        active = _text(row.get("status"), child(path, "status")) not in TERMINAL
        events = row.get("events")
        if not isinstance(events, list):
            raise TraceError(child(path, "events"), "must be a list of events")
        decisions = []
        for j, event in enumerate(events):
            event_path = child(child(path, "events"), j)
            _text(_object(event, event_path).get("type"), child(event_path, "type"))
            decisions.append((_time(event.get("t_ms"), child(event_path, "t_ms")), decision(event)))
        by_key.setdefault(key, []).append(RecordedDeployment(deployment_id, key, active, tuple(decisions)))
    return {key: tuple(sorted(ds, key=lambda d: deployment_number(d.deployment_id))) for key, ds in by_key.items()}


def _bundles(rows: list[dict[str, Any]]) -> dict[str, str]:
    """The payload fingerprint each manifest name was deployed with: part of every spec digest."""
    bundles = {}
    for i, row in enumerate(rows):
        fingerprint = row.get("bundle_fingerprint")
        if fingerprint is not None:
            name = _text(row.get("manifest"), child(child("$.versions", i), "manifest"))
            bundles[name] = _text(fingerprint, child(child("$.versions", i), "bundle_fingerprint"))
    return bundles


def _action(row: dict[str, Any], path: str, manifests: Mapping[str, Any], bundles: Mapping[str, str]) -> Action:
    """A recorded operator call as the scenario action that repeats it (its `deployment_id` says which
    deployment it applied to or created, and is not part of the call)."""
    verb = next(v for v in ("deploy", "rollback", *_TARGETED) if v in row)
    target = _text(row[verb], child(path, verb))
    options = {name: row[name] for name in _OPTIONS.get(verb, ("reason",)) if row.get(name) is not None}
    for name, value in options.items():
        if name == "overrides":
            _object(value, child(path, name))
        else:
            _text(value, child(path, name))
    if verb == "deploy":
        if target not in manifests:
            raise TraceError(child(path, verb), f'names no manifest of the trace: "{target}"')
        bundle = bundles.get(target)
        try:
            load_manifest(manifests[target], options.get("overrides"), options.get("key"), bundle)
        except InvalidManifestError as error:
            raise TraceError(child("$.manifests", target), error.message) from None
        if bundle is not None:
            options["bundle"] = bundle
    return Action(
        at_ms=_time(row["at_ms"], child(path, "at_ms")), verb=verb, target=target, options=options, source=row
    )


def _instances(rows: list[dict[str, Any]]) -> dict[str, RecordedInstance]:
    instances = {}
    for i, row in enumerate(rows):
        path = child("$.instances", i)
        placed = row.get("placed_ms")
        if placed is None:
            continue  # facts of an instance placed before the trace begins: no replay places it
        facts = tuple(
            (fact["t_ms"], FactKind(fact["kind"]), _check_name(fact.get("check"), child(child(path, "facts"), j)))
            for j, fact in enumerate(row["facts"])
        )
        instances[row["instance_id"]] = RecordedInstance(
            row["instance_id"], _time(placed, child(path, "placed_ms")), facts
        )
    return instances


def _check_name(value: Any, path: str) -> str:
    if value is None:
        return ""
    return _text(value, child(path, "check"))
