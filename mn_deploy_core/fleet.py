"""What runs now: live instances, and per key the current job's serving primary for each agent.

Routing an update compares the target manifest against this (changed agents are those whose running
instance differs), and rolling replaces entries here one agent at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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

    @property
    def agent_id(self) -> str:
        return self.agent.agent_id

    def to_record(self) -> InstanceRecord:
        fields = {name: getattr(self, name) for name in _STORED}
        return InstanceRecord(agent_id=self.agent_id, role=str(self.role), **fields)

    @classmethod
    def from_record(cls, record: InstanceRecord, agent: AgentSpec) -> Instance:
        fields = {name: getattr(record, name) for name in _STORED}
        return cls(agent=agent, role=Role(record.role), **fields)


# what a stored instance record carries besides the agent spec and role, which convert on their own
_STORED = tuple(name for name in field_names(InstanceRecord) if name not in ("agent_id", "role"))


@dataclass(frozen=True, slots=True)
class InstanceView:
    """A read-only look at a live instance, for drivers and operators."""

    instance_id: str
    agent_id: str
    job_id: str
    deployment_key: str
    deployment_id: str
    version: str
    role: str
    spec_digest: str
    healthy: bool | None

    @classmethod
    def of(cls, instance: Instance) -> InstanceView:
        return cls(
            instance.instance_id,
            instance.agent_id,
            instance.job_id,
            instance.deployment_key,
            instance.deployment_id,
            instance.version,
            str(instance.role),
            instance.agent.digest,
            instance.healthy,
        )


@dataclass(slots=True)
class Job:
    """A key's current job: its id, topology and the primary serving each agent."""

    job_id: str
    topology: str
    primaries: dict[str, Instance] = field(default_factory=dict)

    def digests(self) -> dict[str, str]:
        return {agent_id: i.agent.digest for agent_id, i in self.primaries.items()}

    @property
    def active(self) -> bool:
        """Some instance of the job is still running (not failed after its restarts)."""
        return any(not i.failed for i in self.primaries.values())


class Fleet:
    """Every live instance by id, and each key's current job."""

    def __init__(self) -> None:
        self.instances: dict[str, Instance] = {}
        self.jobs: dict[str, Job] = {}

    def add(self, instance: Instance) -> None:
        self.instances[instance.instance_id] = instance

    def remove(self, instance_id: str) -> Instance | None:
        return self.instances.pop(instance_id, None)

    def views(self, key: str | None = None) -> list[InstanceView]:
        return [InstanceView.of(i) for i in self.instances.values() if key is None or i.deployment_key == key]
