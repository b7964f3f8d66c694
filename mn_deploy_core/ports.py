"""The narrow cut between the rollout core and a world.

The controller places and stops instances through a `Runtime`, persists through a `Store` and publishes
who may be discovered through a `Registry`. Facts about instances come back through
`Controller.observe`. Everything crossing this line is a plain value, but for the instances a `Commit` carries,
which a store turns into records itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from mn_deploy_core.lifecycle import Life
from mn_deploy_core.records import DeploymentRecord, Event, InstanceRecord, VersionRecord


class Role(StrEnum):
    """How an instance takes part in a deployment; only primaries are discoverable by default."""

    PRIMARY = "primary"
    CANARY = "canary"
    CANDIDATE = "candidate"


class FactKind(StrEnum):
    """Raw facts a runtime reports about one instance (R8)."""

    PLACED = "placed"
    RUNNING = "running"
    READY = "ready"
    CHECK_PASSING = "check_passing"
    CHECK_FAILING = "check_failing"
    RESTARTED = "restarted"
    EXITED = "exited"
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Fact:
    """One raw fact; `check` names the check for the two check kinds."""

    instance_id: str
    kind: FactKind
    check: str = ""


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """In-place restarts the runtime performs before reporting an instance failed."""

    attempts: int = 2
    delay_ms: int = 1000


@dataclass(frozen=True, slots=True)
class Placement:
    """What a runtime needs to start one instance of one agent.

    `batch` (a batch or sysbatch job, R3b): an exit with status 0 completes the instance instead of counting
    as a crash.
    """

    instance_id: str
    agent_id: str
    job_id: str
    deployment_key: str
    deployment_id: str
    deployment_version: str
    role: Role
    phase: str
    spec_digest: str
    node: Mapping[str, Any]
    checks: tuple[str, ...]
    restart: RestartPolicy
    bundle: str | None = None
    batch: bool = False


@dataclass(frozen=True, slots=True)
class ServiceInstance:
    """One service of one instance as discovery sees it (R14)."""

    name: str
    instance_id: str
    agent_id: str
    job_id: str
    deployment_id: str
    deployment_key: str
    deployment_version: str
    deployment_role: str
    passing: bool = False


class Recordable(Life, Protocol):
    """An instance a commit carries: its record is made when a store needs it."""

    def to_record(self) -> InstanceRecord: ...


class Runtime(Protocol):
    """Starts and stops instances. Calls return at once; outcomes come back as facts."""

    def place(self, placement: Placement) -> None: ...

    def stop(self, instance_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Commit:
    """Everything one controller call decided, handed to the store in one piece: a store with transactions
    writes it atomically; one without writes it with `write_in_order`.

    `changed` holds the instances themselves, not records: every change to an instance is committed at the end
    of the call that made it, so a store may keep the object and make its record only when read (memory), or
    make it at once (Redis), and a call that touches an instance ten times pays for no record at all."""

    records: Sequence[tuple[DeploymentRecord, Sequence[Event]]]
    versions: Sequence[VersionRecord] = ()
    changed: Sequence[Recordable] = ()
    removed: Sequence[str] = ()
    """Ids of stopped instances; their last states are among `changed`, for a store that keeps histories."""


class Store(Protocol):
    """Durable deployment, version, instance and event records."""

    def allocate_deployment_number(self, key: str) -> int:
        """A number never handed out before, for the id `dep_<safekey>_<n>`."""
        ...

    def allocate_version(self, key: str) -> str:
        """The next version of `key`: above every version it ever had, never reused (R1)."""
        ...

    def commit(self, commit: Commit) -> list[int]:
        """Write one decision; return each record's new revision, in order.

        A record is written only if its `revision` is the stored one (ConflictError when another writer saved
        first); its new events are appended to the full history.
        """
        ...

    def load_deployment(self, deployment_id: str) -> DeploymentRecord | None: ...

    def current_deployment_id(self, key: str) -> str | None: ...

    def list_deployments(
        self, key: str | None = None, status: str | None = None, *, after: str | None = None, limit: int | None = None
    ) -> list[DeploymentRecord]:
        """Sorted by id; a page: those after the id `after`, at most `limit` (None: all)."""
        ...

    def deployment_events(self, deployment_id: str) -> list[Event]: ...

    def load_version(self, key: str, version: str) -> VersionRecord | None: ...

    def list_versions(self, key: str) -> list[VersionRecord]:
        """All versions of `key`, sorted by their integer value."""
        ...

    def list_instances(self) -> list[InstanceRecord]:
        """Every live instance, for a controller taking over after a restart."""
        ...


class Writes(Protocol):
    """A store's single writes, from which `write_in_order` makes a commit."""

    def save_deployment(self, record: DeploymentRecord, new_events: Sequence[Event]) -> int: ...

    def save_version(self, record: VersionRecord) -> None: ...

    def save_instances(self, changed: Sequence[Recordable], removed: Sequence[str]) -> None: ...


def write_in_order(store: Writes, commit: Commit) -> list[int]:
    """A commit as single writes, in the order that keeps a crash between them harmless to read back:
    instances, then versions, then the records that name them."""
    if commit.changed or commit.removed:
        store.save_instances(commit.changed, commit.removed)
    for version in commit.versions:
        store.save_version(version)
    return [store.save_deployment(record, events) for record, events in commit.records]


class Recorder(Protocol):
    """Keeps what went into the decisions, for a trace (docs/traces.md): every raw fact the controller takes in and
    every operator call it accepts, under the deployment each concerns, before the decision it leads to.
    `entry` is plain JSON in the words of `mn_deploy_core.trace`."""

    def record(self, deployment_id: str, now: float, entry: Mapping[str, Any]) -> None: ...


class Registry(Protocol):
    """Service instances with their deployment fields, and the lookup rule of R14."""

    def register(self, service: ServiceInstance) -> None: ...

    def deregister(self, instance_id: str) -> None: ...

    def set_passing(self, instance_id: str, passing: bool) -> None: ...

    def promote(self, key: str, version: str) -> None:
        """Every instance of `key` at `version` becomes primary, in one call."""
        ...

    def lookup(
        self,
        name: str,
        *,
        include_candidates: bool = False,
        role: str | None = None,
        passing_only: bool = True,
    ) -> list[ServiceInstance]: ...
