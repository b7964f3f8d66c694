"""Deployment, version and event records and their JSON form (R12, R13).

Records hold only immutable values (tuples, frozen dataclasses, mappings nobody mutates), so a store may
keep a shallow copy: a save costs the same for a 10-agent and a 10,000-agent deployment.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from functools import lru_cache
from operator import attrgetter
from typing import Any, overload

from mn_deploy_core.lifecycle import Interval, life_outcome
from mn_deploy_core.status import ACTIVE

EVENTS_KEPT = 100

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_key(key: str) -> str:
    """The key as it appears inside a deployment id: runs of unsafe characters become `-`."""
    return _UNSAFE.sub("-", key).strip("-")


_DEPLOYMENT_PREFIX, _JOB_PREFIX = "dep_", "job_"


def deployment_id(key: str, number: int) -> str:
    return f"{_DEPLOYMENT_PREFIX}{safe_key(key)}_{number}"


def job_id_for(key: str, number: int) -> str:
    """The job deployment `number` of `key` creates when it runs a new job: the two ids share key and number."""
    return f"{_JOB_PREFIX}{safe_key(key)}_{number}"


def creating_deployment_id(job: str) -> str | None:
    """The id of the deployment that created the job `job` (by the naming of `job_id_for`), or None for an id no
    job has."""
    if not job.startswith(_JOB_PREFIX):
        return None
    return _DEPLOYMENT_PREFIX + job.removeprefix(_JOB_PREFIX)


def deployment_number(deployment_id: str) -> int:
    """The allocation number at the end of `dep_<safekey>_<n>`: a later deployment has a higher one."""
    tail = deployment_id.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else 0


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def field_names(cls: type) -> tuple[str, ...]:
    """A dataclass's field names, computed once: records convert to JSON on hot read paths."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


def _json_value(value: Any) -> Any:
    """A field value as JSON would hold it: sequences as lists, mappings as fresh dicts (cheap checks first,
    the abstract classes last: GetDeployment converts every version of a key, a simulation every instance)."""
    if value is None or isinstance(value, (str, int, float)):
        return value
    if isinstance(value, (tuple, list)):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, AgentQueue):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    return value


def version_order(version: str) -> tuple[int, str]:
    """Versions sort by their integer value (reference §13); a non-integer counts as 0."""
    return (int(version) if version.isascii() and version.isdigit() else 0, version)


@lru_cache(maxsize=1024)
def iso_timestamp(t_ms: float) -> str:
    """ISO-8601 UTC with milliseconds for a time in ms since the epoch of the driver's clock. A call stamps
    several changes at one time, so each time is formatted once (and its records share the string)."""
    whole = int(t_ms)
    seconds, millis = divmod(whole, 1000)
    return f"{_iso_second(seconds)}.{millis:03d}Z"


@lru_cache(maxsize=4096)
def _iso_second(seconds: int) -> str:
    """Events cluster in time, so formatting each second once saves most of the cost."""
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened to a deployment; `fields` holds the type-specific data."""

    type: str
    t_ms: float
    timestamp: str
    fields: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "timestamp": self.timestamp, "t_ms": self.t_ms, **self.fields}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Event:
        extra = {k: v for k, v in data.items() if k not in ("type", "timestamp", "t_ms")}
        return cls(type=str(data["type"]), t_ms=float(data["t_ms"]), timestamp=str(data["timestamp"]), fields=extra)


@dataclass(frozen=True, slots=True)
class Counters:
    """Nomad-style deployment counters: a first verdict counts once; healthy->unhealthy moves one."""

    desired_total: int = 0
    desired_canaries: int = 0
    placed: int = 0
    healthy: int = 0
    unhealthy: int = 0

    def to_json(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in field_names(type(self))}

    def add(self, *, placed: int = 0, healthy: int = 0, unhealthy: int = 0) -> Counters:
        """A copy with these counts added (cheaper than `dataclasses.replace` on a hot path)."""
        return Counters(
            self.desired_total,
            self.desired_canaries,
            self.placed + placed,
            self.healthy + healthy,
            self.unhealthy + unhealthy,
        )


class AgentQueue(Sequence[str]):
    """Agents still to start: an immutable view (front replacements + a suffix of the changed ids).

    Taking one from the front is O(1) and never copies the changed-agent list.
    """

    __slots__ = ("_front", "_ids", "_start")

    def __init__(self, ids: tuple[str, ...], start: int = 0, front: tuple[str, ...] = ()) -> None:
        self._ids = ids
        self._start = start
        self._front = front

    def __len__(self) -> int:
        return len(self._front) + len(self._ids) - self._start

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        return list(self)[index] if isinstance(index, slice) else self._item(index)

    def _item(self, index: int) -> str:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        if index < len(self._front):
            return self._front[index]
        return self._ids[self._start + index - len(self._front)]

    def __iter__(self) -> Iterator[str]:
        yield from self._front
        for i in range(self._start, len(self._ids)):
            yield self._ids[i]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"AgentQueue({list(self)!r})"

    def popleft(self) -> tuple[str, AgentQueue]:
        """The first agent and the queue without it."""
        if self._front:
            return self._front[0], AgentQueue(self._ids, self._start, self._front[1:])
        return self._ids[self._start], AgentQueue(self._ids, self._start + 1)

    def pushleft(self, agent_id: str) -> AgentQueue:
        return AgentQueue(self._ids, self._start, (agent_id, *self._front))


@dataclass(slots=True)
class DeploymentRecord:
    """The reference's deployment record plus docs/rules.md R13. Replaced field by field, never mutated deep."""

    deployment_id: str
    deployment_key: str
    status: str
    description: str
    strategy: str
    mode: str
    policy: Mapping[str, Any]
    target_manifest: Mapping[str, Any]
    created_at: str
    updated_at: str
    current_job_id: str | None = None
    stable_job_id: str | None = None
    source_job_id: str | None = None
    target_job_id: str | None = None
    current_version: str | None = None
    stable_version: str | None = None
    target_version: str | None = None
    health: Mapping[str, Any] = field(default_factory=dict)
    target_scheduler: Mapping[str, Any] | None = None
    changed_agent_ids: tuple[str, ...] = ()
    remaining_agent_ids: Sequence[str] = ()
    canary_agent_ids: tuple[str, ...] = ()
    previous_status: str | None = None
    require_progress_by_ms: float | None = None
    counters: Counters = field(default_factory=Counters)
    rollback: Mapping[str, Any] | None = None
    reverted_to_version: str | None = None
    reschedules: Mapping[str, int] = field(default_factory=dict)
    step: int = 0
    step_pause_until_ms: float | None = None
    events: tuple[Event, ...] = ()
    revision: int = 0

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def with_event(self, event: Event) -> None:
        """Keep the newest EVENTS_KEPT events on the record (the store keeps them all)."""
        kept = self.events if len(self.events) < EVENTS_KEPT else self.events[1 - EVENTS_KEPT :]
        self.events = (*kept, event)

    def snapshot(self) -> DeploymentRecord:
        """A copy safe to keep: every field value is immutable, so a shallow copy is enough."""
        return DeploymentRecord(*_DEPLOYMENT_VALUES(self))

    def to_json(self) -> dict[str, Any]:
        data = {name: _json_value(getattr(self, name)) for name in field_names(type(self))}
        data["events"] = [e.to_json() for e in self.events]
        data["counters"] = self.counters.to_json()
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DeploymentRecord:
        known = set(field_names(cls))
        values: dict[str, Any] = {k: v for k, v in data.items() if k in known}
        values["events"] = tuple(Event.from_json(e) for e in data.get("events", ()))
        values["counters"] = Counters(**data.get("counters", {}))
        for name in ("changed_agent_ids", "remaining_agent_ids", "canary_agent_ids"):
            values[name] = tuple(data.get(name) or ())
        return cls(**values)


@dataclass(frozen=True, slots=True)
class VersionRecord:
    """One version of a key: what was deployed, by whom, and whether it proved stable."""

    deployment_key: str
    version: str
    deployment_id: str
    job_id: str | None
    manifest: Mapping[str, Any]
    spec_digest: str
    created_at: str
    updated_at: str
    stable: bool = False
    created_by: str = "deploy"
    rollback: Mapping[str, Any] | None = None
    manifest_ref: Mapping[str, Any] = field(default_factory=dict)
    scheduler: Mapping[str, Any] | None = None
    submitted_at: str | None = None
    tag: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {name: _json_value(getattr(self, name)) for name in field_names(type(self))}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VersionRecord:
        known = set(field_names(cls))
        return cls(**{k: v for k, v in data.items() if k in known})


_DEPLOYMENT_VALUES = attrgetter(*field_names(DeploymentRecord))


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    """An instance as stored: what it is, and its lifecycle so far (docs/scenarios.md "instances").

    A restarted controller takes over the live ones from it; a stopped one's last record tells its whole
    life. `role` is the role now; `promoted_ms` when a canary or candidate became primary. `serving` is
    discovery's passing flag (any role); `discoverable_ms` are the intervals in which a
    normal lookup returned it (primary and passing). `passing_again_ms[i]` is when it was passing again after
    restart `i` (None until it is). `spec_digest` is the agent spec it runs (empty in records written before
    it was kept).
    """

    instance_id: str
    agent_id: str
    job_id: str
    deployment_key: str
    deployment_id: str
    version: str
    role: str
    placed_ms: float
    healthy: bool | None = None
    failed: bool = False
    serving: bool = False
    running_ms: float | None = None
    healthy_ms: float | None = None
    unhealthy_ms: float | None = None
    restart_ms: tuple[float, ...] = ()
    passing_again_ms: tuple[float | None, ...] = ()
    promoted_ms: float | None = None
    completed_ms: float | None = None
    stopped_ms: float | None = None
    discoverable_ms: tuple[Interval, ...] = ()
    spec_digest: str = ""

    @property
    def outcome(self) -> str:
        return life_outcome(self.healthy_ms, self.unhealthy_ms, self.completed_ms, self.stopped_ms)

    def to_record(self) -> InstanceRecord:
        """A record is its own record (`ports.Recordable`), so a store takes records and live instances alike."""
        return self

    def to_json(self) -> dict[str, Any]:
        """Every field but the three sequences is a scalar already (a simulation converts every instance)."""
        data = dict(zip(field_names(InstanceRecord), _INSTANCE_VALUES(self), strict=True))
        data["restart_ms"] = list(self.restart_ms)
        data["passing_again_ms"] = list(self.passing_again_ms)
        data["discoverable_ms"] = [list(interval) for interval in self.discoverable_ms]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> InstanceRecord:
        known = set(field_names(cls))
        values = {k: v for k, v in data.items() if k in known}
        for name in ("restart_ms", "passing_again_ms"):
            values[name] = tuple(values.get(name) or ())
        values["discoverable_ms"] = tuple((start, end) for start, end in values.get("discoverable_ms") or ())
        return cls(**values)


_INSTANCE_VALUES = attrgetter(*field_names(InstanceRecord))
