"""What runs now: live instances, and per key the current job's serving primary for each agent.

Routing an update compares the target manifest against this (changed agents are those whose running
instance differs), and rolling replaces entries here one agent at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import attrgetter

from mn_deploy_core.lifecycle import Interval, life_outcome
from mn_deploy_core.manifest import AgentSpec
from mn_deploy_core.ports import Role
from mn_deploy_core.records import InstanceRecord, field_names


@dataclass(slots=True)
class Instance:
    """One placement of one agent at one spec; ids are never reused."""

    instance_id: str
    agent: AgentSpec
    job_id: str
    deployment_key: str
    deployment_id: str
    version: str
    role: Role
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

    @property
    def agent_id(self) -> str:
        return self.agent.agent_id

    @property
    def spec_digest(self) -> str:
        return self.agent.digest

    @property
    def outcome(self) -> str:
        return life_outcome(self.healthy_ms, self.unhealthy_ms, self.completed_ms, self.stopped_ms)

    @property
    def live(self) -> bool:
        """Runs or will (R3 "runs now"): not failed for good, not completed, not stopped."""
        return not self.failed and self.completed_ms is None and self.stopped_ms is None

    @property
    def discoverable(self) -> bool:
        """A normal lookup returns it now (R14): a primary whose checks pass after a healthy verdict."""
        return self.serving and self.role is Role.PRIMARY

    # ---- the lifecycle, recorded as it happens (whoever owns the instance) ----------------------

    def ran(self, now: float) -> None:
        if self.running_ms is None:
            self.running_ms = now

    def judged(self, healthy: bool, now: float) -> None:
        """A verdict: the first of each kind is kept (healthy, then unhealthy after a failure)."""
        self.healthy = healthy
        if healthy and self.healthy_ms is None:
            self.healthy_ms = now
        elif not healthy and self.unhealthy_ms is None:
            self.unhealthy_ms = now

    def promoted(self, now: float) -> None:
        """A canary or candidate becomes primary, and discoverable if it passes."""
        self.role = Role.PRIMARY
        self.promoted_ms = now
        self.reconcile_discoverable(now)

    def restarted(self, now: float) -> None:
        self.restart_ms = (*self.restart_ms, now)
        self.passing_again_ms = (*self.passing_again_ms, None)

    def gave_up(self, now: float) -> None:
        """Failed for good: its restarts are used up (the unhealthy verdict is recorded by `judged`)."""
        self.failed = True

    def completed(self, now: float) -> None:
        if self.completed_ms is None:
            self.completed_ms = now

    def passing(self, serving: bool, now: float) -> None:
        """Discovery's passing flag changed; after a restart, the first pass is when it serves again."""
        self.serving = serving
        if serving and self.passing_again_ms and self.passing_again_ms[-1] is None:
            self.passing_again_ms = (*self.passing_again_ms[:-1], now)
        self.reconcile_discoverable(now)

    def reconcile_discoverable(self, now: float) -> None:
        """Open or close the current discoverable interval after its role or passing flag changed."""
        open_now = bool(self.discoverable_ms) and self.discoverable_ms[-1][1] is None
        if self.discoverable and not open_now:
            self.discoverable_ms = (*self.discoverable_ms, (now, None))
        elif open_now and not self.discoverable:
            self.discoverable_ms = (*self.discoverable_ms[:-1], (self.discoverable_ms[-1][0], now))

    def stopped(self, now: float) -> None:
        self.stopped_ms = now
        self.serving = False
        self.reconcile_discoverable(now)

    def to_record(self) -> InstanceRecord:
        """The record's fields read off the instance by name (`agent_id` is a property here), the role as text;
        positional, because a simulation makes one per instance and keywords cost twice as much."""
        values = list(_RECORD_VALUES(self))
        values[_ROLE] = self.role.value
        return InstanceRecord(*values)

    @classmethod
    def from_record(cls, record: InstanceRecord, agent: AgentSpec) -> Instance:
        fields = {name: getattr(record, name) for name in _STORED}
        return cls(agent=agent, role=Role(record.role), **fields)


# what a stored record carries besides the agent spec (its id, its digest) and the role, which convert apart
_STORED = tuple(name for name in field_names(InstanceRecord) if name not in ("agent_id", "role", "spec_digest"))
_RECORD_VALUES = attrgetter(*field_names(InstanceRecord))
_ROLE = field_names(InstanceRecord).index("role")


@dataclass(slots=True)
class Job:
    """A key's current job: its id, topology and the primary serving each agent. A batch job's agents run to
    their end and are never replaced (`long_running` False, R3b); a service's are kept running (R16)."""

    job_id: str
    topology: str
    primaries: dict[str, Instance] = field(default_factory=dict)
    long_running: bool = True

    def live(self) -> dict[str, Instance]:
        """Each agent's primary that runs or will: placed or running, not failed for good, not stopped (R3)."""
        return {agent_id: i for agent_id, i in self.primaries.items() if i.live}

    def digests(self) -> dict[str, str]:
        """The spec each agent runs now; an agent without a live instance runs none, so it counts as changed."""
        return {agent_id: i.agent.digest for agent_id, i in self.live().items()}

    @property
    def active(self) -> bool:
        """Some instance of the job is live; a job with none left is replaced whole (R3 step 3)."""
        return bool(self.live())


class Fleet:
    """Every live instance by id, and each key's current job."""

    def __init__(self) -> None:
        self.instances: dict[str, Instance] = {}
        self.jobs: dict[str, Job] = {}

    def add(self, instance: Instance) -> None:
        self.instances[instance.instance_id] = instance

    def remove(self, instance_id: str) -> Instance | None:
        return self.instances.pop(instance_id, None)

    def records(self, key: str | None = None) -> list[InstanceRecord]:
        """The live instances (of one key) as records: the one shape drivers and operators read."""
        return [i.to_record() for i in self.instances.values() if key is None or i.deployment_key == key]
