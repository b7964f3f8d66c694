"""What an operator needs from a deployment record, read from the API's JSON: progress per role, time left to
the progress deadline, the last events, the next command that makes sense, and its instances.

Pure functions over the decoded `result_json`, so the plain and the Rich output show the same facts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mn_deploy_core.manifest import LONG_RUNNING
from mn_deploy_core.status import ACTIVE, Status

Record = Mapping[str, Any]
Fields = list[tuple[str, str]]

CLI = "mn-deploy deployment"
UNSUCCESSFUL = frozenset({Status.FAILED, Status.CANCELLED})
EVENTS_SHOWN = 5
# The first event of every rollout's record; when it is gone the record kept only its last 100 events.
_START_EVENTS = frozenset({"deployment_created", "deployment_started"})


@dataclass(frozen=True)
class RoleProgress:
    """`healthy` counts the agents that got where `goal` says: healthy, or for a batch job completed."""

    role: str
    healthy: int
    placed: int
    desired: int
    goal: str = "healthy"

    def text(self) -> str:
        return f"{self.healthy}/{self.desired} {self.goal}, {self.placed} placed"


@dataclass(frozen=True)
class Frame:
    """One look at a deployment being watched."""

    deployment_id: str
    status: str
    description: str
    roles: tuple[RoleProgress, ...]
    deadline: str | None

    @property
    def state(self) -> tuple[Any, ...]:
        """What changed when it differs; the countdown alone is not a change."""
        return self.status, self.description, self.roles

    def line(self) -> str:
        parts = [self.status, *(f"{r.role} {r.text()}" for r in self.roles)]
        if self.deadline is not None:
            parts.append(f"deadline {self.deadline}")
        return " | ".join(parts)


def record_of(result: Record) -> Record:
    """Deploy, promote and rollback nest the record under `deployment`; get, pause, resume and fail answer it."""
    nested = result.get("deployment")
    return nested if isinstance(nested, Mapping) else result


def is_ended(record: Record) -> bool:
    return record.get("status") not in ACTIVE


def role_progress(record: Record) -> list[RoleProgress]:
    """Healthy and placed agents per role, against what each role should reach.

    The counters give the totals; the split comes from the events (each placement names its role; promotion
    makes canaries and candidates primary). A record that no longer holds its whole history shows the
    totals alone.
    """
    counters = record.get("counters") or {}
    total = int(counters.get("desired_total", 0))
    if total == 0:
        return []
    if is_batch(record):
        return [_batch_progress(record, total, int(counters.get("placed", 0)))]
    events = record.get("events") or []
    if not events or events[0].get("type") not in _START_EVENTS:
        return [RoleProgress("all", int(counters.get("healthy", 0)), min(int(counters.get("placed", 0)), total), total)]
    agents = _agents(events)
    desired = _desired(record, total, int(counters.get("desired_canaries", 0)), events)
    return [
        RoleProgress(
            role,
            sum(1 for r, healthy in agents.values() if r == role and healthy),
            sum(1 for r, _ in agents.values() if r == role),
            count,
        )
        for role, count in desired.items()
        if count
    ]


def is_batch(record: Record) -> bool:
    """R3b: a batch job (the manifest's `job_type`, batch when absent) runs to its end and is never health gated.
    A record without its manifest shows health, as before batch jobs were told apart."""
    manifest = record.get("target_manifest")
    if not isinstance(manifest, Mapping):
        return False
    return str(manifest.get("job_type") or "batch").strip().lower() not in LONG_RUNNING


def _batch_progress(record: Record, total: int, placed: int) -> RoleProgress:
    """A batch job's agents count when they completed, as the controller counts its instances (GetDeployment's
    `instance_counts`, in the reply `status` and `watch` read)."""
    completed = int((record.get("instance_counts") or {}).get("completed", 0))
    return RoleProgress("primary", completed, placed, total, "completed")


def _agents(events: Iterable[Record]) -> dict[str, tuple[str, bool]]:
    """Each agent's newest instance: (role, healthy)."""
    agents: dict[str, tuple[str, bool]] = {}
    newest: dict[str, Any] = {}
    for event in events:
        kind, agent, instance = event.get("type"), str(event.get("agent_id")), event.get("instance_id")
        if kind == "deployment_instance_placed":
            newest[agent] = instance
            agents[agent] = (str(event.get("role")), False)
        elif kind in ("deployment_instance_healthy", "deployment_instance_unhealthy", "deployment_instance_lost"):
            if agent in newest and newest[agent] == instance:  # a lost one is not healthy until replaced (R16)
                agents[agent] = (agents[agent][0], kind == "deployment_instance_healthy")
        elif kind == "deployment_promoted":
            agents = {a: ("primary", healthy) for a, (_, healthy) in agents.items()}
    return agents


def _desired(record: Record, total: int, canaries: int, events: Sequence[Record]) -> dict[str, int]:
    """Blue-green trials the whole job as candidates, agent-level its canaries; after promotion all are primary."""
    trial_role, trial = ("candidate", total) if record.get("mode") == "blue_green" else ("canary", canaries)
    if not trial or any(e.get("type") == "deployment_promoted" for e in events):
        return {"primary": total}
    return {trial_role: trial, "primary": total - trial}


def deadline(record: Record, now_ms: float) -> str | None:
    """Time left to the progress deadline (on the controller's clock, ms since the epoch); None once ended."""
    status = record.get("status")
    if status not in ACTIVE:
        return None
    if status == Status.PAUSED:
        return "not enforced while paused"
    if status == Status.AWAITING_PROMOTION:
        return "not enforced while awaiting promotion"
    if (record.get("policy") or {}).get("progress_deadline_ms") == 0:
        return "none (the first unhealthy instance fails the deployment)"
    by = record.get("require_progress_by_ms")
    if by is None:
        return "starts at the first placement"
    left = by - now_ms
    return f"{_duration(left)} left" if left > 0 else "due now"


def _duration(ms: float) -> str:
    hours, rest = divmod(math.ceil(ms / 1000), 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {seconds}s" if minutes else f"{seconds}s"


def next_command(record: Record) -> str:
    """The command an operator most likely wants after seeing this record."""
    key, status = record.get("deployment_key"), record.get("status")
    if status == Status.RUNNING:
        return f"{CLI} watch {key}"
    if status == Status.AWAITING_PROMOTION:
        return f"{CLI} promote {key}"
    if status == Status.PAUSED:
        return f"{CLI} resume {key}"
    if status == Status.FAILED:
        if record.get("reverted_to_version"):
            return f"{CLI} watch {key}"
        stable = record.get("stable_version")
        return f"{CLI} rollback {key} --version {stable}" if stable else f"{CLI} deploy BUNDLE --key {key}"
    if status == Status.CANCELLED:
        return f"{CLI} status {key}"
    return f"{CLI} history {key}"


def event_line(event: Record) -> str:
    details = ", ".join(f"{k}={_value(v)}" for k, v in event.items() if k not in ("type", "timestamp", "t_ms"))
    return " ".join(part for part in (str(event.get("timestamp")), str(event.get("type")), details) if part)


def _value(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value))
    return "-" if value is None else str(value)


def _rollback(rollback: Record | None) -> str | None:
    if not rollback:
        return None
    text = f"{rollback.get('from_version') or '-'} -> {rollback.get('to_version')}"
    return f"{text}: {rollback['reason']}" if rollback.get("reason") else text


def _identity(record: Record) -> Fields:
    return [
        ("Deployment", str(record.get("deployment_id"))),
        ("Key", str(record.get("deployment_key"))),
        ("Status", str(record.get("status"))),
        ("Description", str(record.get("description"))),
    ]


def status_fields(record: Record, now_ms: float) -> Fields:
    """The status panel: where the deployment stands, how far it got, what happened last and what to do."""
    fields = _identity(record)
    fields.append(("Strategy", f"{record.get('strategy')} ({record.get('mode')})"))
    for name in ("current", "stable", "target"):
        fields.append((f"{name.capitalize()} version", _value(record.get(f"{name}_version"))))
    fields.extend((p.role.capitalize(), p.text()) for p in role_progress(record))
    unhealthy = (record.get("counters") or {}).get("unhealthy", 0)
    if unhealthy:
        fields.append(("Unhealthy", str(unhealthy)))
    time_left = deadline(record, now_ms)
    if time_left is not None:
        fields.append(("Progress deadline", time_left))
    rollback = _rollback(record.get("rollback"))
    if rollback is not None:
        fields.append(("Rollback", rollback))
    fields.append(("Updated", str(record.get("updated_at"))))
    fields.extend(("Event", event_line(e)) for e in (record.get("events") or [])[-EVENTS_SHOWN:])
    fields.append(("Next", next_command(record)))
    return fields


def action_fields(result: Record, details: Sequence[tuple[str, str]] = ()) -> Fields:
    """The confirmation of a deploy or an operator action."""
    record = record_of(result)
    version = result.get("version")  # the version record, or the API's integer envelope
    target = version.get("version") if isinstance(version, Mapping) else record.get("target_version")
    fields = [*details, *_identity(record), ("Version", _value(target))]
    rollback = _rollback(record.get("rollback"))
    if rollback is not None:
        fields.append(("Rollback", rollback))
    fields.append(("Next", next_command(record)))
    return fields


def frame(record: Record, now_ms: float) -> Frame:
    return Frame(
        str(record.get("deployment_id")),
        str(record.get("status")),
        str(record.get("description")),
        tuple(role_progress(record)),
        deadline(record, now_ms),
    )


def outcome(record: Record) -> str:
    """The one line a watch ends with; an unsuccessful end says what to do next."""
    line = f"Deployment {record.get('deployment_id')} {record.get('status')}: {record.get('description')}"
    return f"{line}; next: {next_command(record)}" if record.get("status") in UNSUCCESSFUL else line


INSTANCE_COLUMNS = ["agent", "version", "role", "node", "pid", "port", "state", "restarts", "since"]


def instance_rows(record: Record, now_ms: float) -> list[list[str]]:
    """The reply's instance rows; `since` as how long the instance has been in its state (`2m 5s`), "-" for
    what is unknown."""
    return [
        [
            str(row.get("agent_id")),
            _value(row.get("version")),
            _value(row.get("role")),
            _value(row.get("node")),
            _value(row.get("pid")),
            _value(row.get("port")),
            _value(row.get("state")),
            _value(row.get("restarts")),
            _age(row.get("since"), now_ms),
        ]
        for row in record.get("instances") or []
    ]


def instances_footer(record: Record) -> str:
    """How many instances there are, and how many of them the rows show when not all."""
    shown, total = len(record.get("instances") or []), int(record.get("instances_total") or 0)
    noun = "instance" if total == 1 else "instances"
    if shown < total:
        return f"showing the first {shown:,} of {total:,} {noun} (by agent id); --json gives the same rows"
    return f"{total:,} {noun}"


def _age(timestamp: Any, now_ms: float) -> str:
    """How long ago an ISO timestamp (the API's `...Z`) was, as `2m 5s`; the text itself when it does not parse."""
    try:
        then_ms = datetime.fromisoformat(str(timestamp)).timestamp() * 1000
    except ValueError:
        return _value(timestamp)
    return _duration(max(now_ms - then_ms, 0))


LIST_COLUMNS = ["deployment", "key", "status", "version", "stable", "updated", "description"]
HISTORY_COLUMNS = ["version", "stable", "created by", "created at", "deployment", "rollback"]


def list_rows(records: Iterable[Record]) -> list[list[str]]:
    return [
        [
            str(r.get("deployment_id")),
            str(r.get("deployment_key")),
            str(r.get("status")),
            _value(r.get("target_version")),
            _value(r.get("stable_version")),
            str(r.get("updated_at")),
            str(r.get("description")),
        ]
        for r in records
    ]


def history_rows(versions: Iterable[Record]) -> list[list[str]]:
    return [
        [
            str(v.get("version")),
            "stable" if v.get("stable") else "not stable",
            str(v.get("created_by")),
            str(v.get("created_at")),
            str(v.get("deployment_id")),
            _rollback(v.get("rollback")) or "-",
        ]
        for v in versions
    ]
