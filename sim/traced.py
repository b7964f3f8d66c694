"""A trace (docs/traces.md) as a run `Result`, so a live rollout (or a saved simulated one) is drawn and measured
with the simulator's own plots and metrics.

A trace keeps every instance's lifecycle as the core recorded it (`life`), every deployment's record and events,
and the versions: the same records `sim.result.collect` reads after a run. The manifest a version ran is named by
its spec: a version whose spec an earlier version had (an auto-revert, a rollback) takes that version's name, so
the plots colour the same agent code alike, as a simulation colours the manifest a scenario named.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mn_deploy_core.records import InstanceRecord
from mn_deploy_core.trace import TraceError, check_time, check_trace
from sim.metrics import compute_metrics
from sim.result import JSON, Result, final_agents, flat_events, instance_row


def result_of_trace(trace: Mapping[str, Any], name: str | None = None) -> Result:
    """The trace as a Result (seed 0, no refused actions); `name` titles it (default: the keys, and the origin
    of a live trace). Raises TraceError for a trace whose shape `check_trace` refuses."""
    check_trace(dict(trace))
    _check_drawable(trace)
    deployments = [dict(d) for d in trace["deployments"]]
    events = flat_events(deployments)
    names = _manifest_names(trace["versions"])
    lives = [(row, _life(row["life"], i)) for i, row in enumerate(trace["instances"]) if row.get("life") is not None]
    instances = [
        instance_row(life, names.get((life.deployment_key, life.version)), row.get("role") or life.role)
        for row, life in lives
    ]
    keys = list(dict.fromkeys(d["deployment_key"] for d in deployments))
    end_ms = _end_ms(events, trace["instances"])
    return Result(
        scenario=name or _title(keys, trace.get("origin")),
        seed=0,
        end_ms=end_ms,
        deployments=deployments,
        versions={key: _versions(trace["versions"], deployments, names, key) for key in keys},
        instances=instances,
        events=events,
        errors=[],
        final={key: _final(key, deployments, [life for _, life in lives], instances) for key in keys},
        metrics=compute_metrics(deployments, instances, events, end_ms),
    )


def _check_drawable(trace: Mapping[str, Any]) -> None:
    """What a Result is read from, beyond `check_trace`: TraceError naming the first part that is not."""
    for i, instance in enumerate(trace["instances"]):
        _check_optional_texts(instance, ("role",), f"$.instances[{i}]")
    for i, version in enumerate(trace["versions"]):
        if not all(isinstance(version.get(name), str) for name in ("key", "version", "manifest")):
            raise TraceError(f"$.versions[{i}]", "must have a key, a version and a manifest name")
        _check_optional_texts(version, ("deployment_id", "spec_digest", "created_by"), f"$.versions[{i}]")
    for i, deployment in enumerate(trace["deployments"]):
        path = f"$.deployments[{i}]"
        if not all(isinstance(deployment.get(name), str) for name in ("deployment_id", "deployment_key", "status")):
            raise TraceError(path, "must have a deployment_id, a deployment_key and a status")
        _check_optional_texts(deployment, ("current_version", "stable_version", "target_version"), path)
        if not isinstance(deployment.get("rollback"), (dict, type(None))):
            raise TraceError(f"{path}.rollback", "must be an object or null")
        events = deployment.get("events")
        if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
            raise TraceError(f"{path}.events", "must be a list of objects")
        for j, event in enumerate(events):
            if not isinstance(event.get("type"), str):
                raise TraceError(f"{path}.events[{j}].type", "must be a string")
            check_time(event.get("t_ms"), f"{path}.events[{j}].t_ms")


_MOMENTS = ("running_ms", "healthy_ms", "unhealthy_ms", "promoted_ms", "stopped_ms", "completed_ms")


def _check_optional_texts(item: Mapping[str, Any], names: tuple[str, ...], path: str) -> None:
    for name in names:
        if not isinstance(item.get(name), (str, type(None))):
            raise TraceError(f"{path}.{name}", "must be a string or null")


def _life(data: Any, index: int) -> InstanceRecord:
    """An instance's `life` as the record it is, its times numbers; TraceError when it is none."""
    path = f"$.instances[{index}].life"
    try:
        life = InstanceRecord.from_json(data) if isinstance(data, dict) else None
    except (KeyError, TypeError, ValueError):
        life = None
    texts = ("instance_id", "agent_id", "version", "deployment_key", "deployment_id", "job_id", "role")
    if life is None or not all(isinstance(getattr(life, n), str) for n in texts):
        raise TraceError(path, "must be an instance record or null")
    check_time(life.placed_ms, f"{path}.placed_ms")
    for name in _MOMENTS:
        if getattr(life, name) is not None:
            check_time(getattr(life, name), f"{path}.{name}")
    for t in [*life.restart_ms, *(t for t in life.passing_again_ms if t is not None)]:
        check_time(t, f"{path}.restart_ms")
    for interval in life.discoverable_ms:
        if len(interval) != 2 or interval[0] is None:
            raise TraceError(f"{path}.discoverable_ms", "must be a list of [from, to] intervals")
        for t in interval:
            if t is not None:
                check_time(t, f"{path}.discoverable_ms")
    return life


def _manifest_names(versions: list[JSON]) -> dict[tuple[str, str], str]:
    """(key, version) -> the trace's manifest name of the first version with that spec."""
    first: dict[tuple[str, str], str] = {}
    names = {}
    for v in versions:
        name = first.setdefault((v["key"], v.get("spec_digest") or v["manifest"]), v["manifest"])
        names[(v["key"], v["version"])] = name
    return names


def _versions(
    versions: list[JSON], deployments: list[JSON], names: Mapping[tuple[str, str], str], key: str
) -> list[JSON]:
    """As a Result lists them; `stable` as the key's last deployment says, `rollback` as the deployment that
    made the version does."""
    own = [d for d in deployments if d["deployment_key"] == key]
    stable = own[-1].get("stable_version") if own else None
    made_by = {d["deployment_id"]: d for d in own}
    return [
        {
            "version": v["version"],
            "stable": v["version"] == stable,
            "spec_digest": v.get("spec_digest"),
            "manifest_name": names[(key, v["version"])],
            "created_by": v.get("created_by"),
            "rollback": made_by.get(v.get("deployment_id"), {}).get("rollback"),
        }
        for v in versions
        if v["key"] == key
    ]


def _final(key: str, deployments: list[JSON], lives: list[InstanceRecord], instances: list[JSON]) -> JSON:
    """What the key ran at the end of the trace, read as `collect` reads it after a run."""
    current = [d for d in deployments if d["deployment_key"] == key][-1]
    names = {row["instance_id"]: row["manifest_name"] for row in instances}
    running = (life for life in lives if life.deployment_key == key and life.stopped_ms is None)
    return {
        "current_version": current.get("current_version"),
        "stable_version": current.get("stable_version"),
        "status": current["status"],
        "agents": final_agents(running, names),
    }


def _end_ms(events: list[JSON], instances: list[JSON]) -> float:
    """The last moment the trace knows of: its last event or fact."""
    times = [e["t_ms"] for e in events] + [f["t_ms"] for row in instances for f in row["facts"]]
    return float(max(times, default=0.0))


def _title(keys: list[str], origin: str | None) -> str:
    return ", ".join(keys) + (" (simulated trace)" if origin is None else f" (live, from {origin})")
