"""One active deployment's state machine (R5-R10): what to place next, when to promote, when to stop.

A rollout has two stages. In the *trial* stage a fixed set of agents runs beside what serves (canaries,
or a whole blue-green job of candidates) and nothing else is placed; once every trial instance is
healthy it is promoted, at once or by the operator. In the *rolling* stage the remaining agents are
replaced destructively, at most `max_parallel` in flight. An initial deployment is a rolling stage with
no budget limit. `_advance` is the one place that moves the machine forward after anything changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from mn_deploy_core.fleet import Instance
from mn_deploy_core.health import Verdict
from mn_deploy_core.manifest import Manifest
from mn_deploy_core.ports import Role
from mn_deploy_core.records import AgentQueue, DeploymentRecord, Event, VersionRecord, iso_timestamp

RUNNING = "Deployment is running"
AWAITING_PROMOTION = "Deployment is running but requires manual promotion"
PENDING_AUTO_PROMOTION = "Deployment is running pending automatic promotion"
PAUSED = "Deployment is paused"
SUCCESSFUL = "Deployment completed successfully"
NOOP = "Deployment contained no runtime changes"
FAILED_UNHEALTHY = "Failed due to unhealthy instances"
FAILED_DEADLINE = "Failed due to progress deadline"
FAILED_BY_OPERATOR = "Deployment marked as failed"
CANCELLED = "Cancelled due to newer version"
VERSION_RECORDED = "Batch version recorded as rerun"

UNLIMITED = 0


class Mode(StrEnum):
    INITIAL = "initial"
    AGENT_LEVEL = "agent_level"
    BLUE_GREEN = "blue_green"


class Stage(StrEnum):
    TRIAL = "trial"
    ROLLING = "rolling"


@dataclass(frozen=True, slots=True)
class Plan:
    """Which agents run as a trial (and in which role), which roll after it, and who promotes."""

    trial: tuple[str, ...]
    trial_role: Role
    rolling: tuple[str, ...]
    manual_promotion: bool


def plan(mode: Mode, target: Manifest, changed: tuple[str, ...]) -> Plan:
    """R3/R6/R7: an initial deployment rolls everything; blue-green trials the whole job as candidates
    (manual promotion when a canary is asked for without auto_promote); agent-level trials its canaries."""
    policy = target.policy
    agents = target.agent_ids()
    if mode is Mode.INITIAL:
        return Plan((), Role.PRIMARY, agents, False)
    if mode is Mode.BLUE_GREEN:
        manual = canary_count(policy.canary, policy.strategy, 1) > 0 and not policy.auto_promote
        return Plan(agents, Role.CANDIDATE, (), manual)
    canaries = canary_count(policy.canary, policy.strategy, len(changed))
    trial = changed[:canaries]
    return Plan(trial, Role.CANARY, changed[canaries:], bool(trial) and not policy.auto_promote)


class Actuator(Protocol):
    """What a rollout asks of the controller: the side effects, done through the ports."""

    def place(self, rollout: Rollout, agent_id: str, role: Role, now: float) -> Instance: ...

    def stop(self, instance: Instance, now: float) -> None: ...

    def promote_trial(self, rollout: Rollout, trial: list[Instance], now: float) -> None: ...

    def deadline_moved(self, rollout: Rollout) -> None: ...

    def succeeded(self, rollout: Rollout, now: float) -> None: ...

    def failed(self, rollout: Rollout, now: float, description: str) -> None: ...


class Journal:
    """A record plus the events added since it was last saved.

    Every change enters `touched`, which the controller saves once at the end of the call that made it.
    """

    def __init__(self, record: DeploymentRecord, touched: dict[str, Journal]) -> None:
        self.record = record
        self.unsaved: list[Event] = []
        self._touched = touched
        self.touch()

    def touch(self) -> None:
        self._touched[self.record.deployment_id] = self

    def event(self, type_: str, now: float, **fields: Any) -> None:
        event = Event(type_, now, iso_timestamp(now), fields)
        self.record.with_event(event)
        self.unsaved.append(event)
        self.touch()

    def set(self, now: float, **changes: Any) -> None:
        for name, value in changes.items():
            setattr(self.record, name, value)
        self.record.updated_at = iso_timestamp(now)
        self.touch()


class Rollout(Journal):
    """The plan and progress of one active deployment."""

    def __init__(
        self,
        actuator: Actuator,
        touched: dict[str, Journal],
        record: DeploymentRecord,
        version: VersionRecord,
        job_id: str,
        manifest: Manifest,
        mode: Mode,
        plan: Plan,
        rolling: Sequence[str],
    ) -> None:
        super().__init__(record, touched)
        self.actuator = actuator
        self.version = version
        self.job_id = job_id
        self.manifest = manifest
        self.policy = manifest.policy
        self.mode = mode
        self.trial_role = plan.trial_role
        self.manual_promotion = plan.manual_promotion
        self.stage = Stage.TRIAL if plan.trial else Stage.ROLLING
        self.trial_pending = list(plan.trial)
        self.trial: dict[str, Instance] = {}
        self.queue = AgentQueue(tuple(rolling))
        self.new: dict[str, Instance] = {}
        self.healthy: set[str] = set()
        self.in_flight = 0
        self.desired = record.counters.desired_total

    # ---- queries -------------------------------------------------------------------------------

    def attempt(self, agent_id: str) -> int:
        """How many replacements this agent has had here: the next instance id's attempt number."""
        return self.record.reschedules.get(agent_id, 0)

    @property
    def key(self) -> str:
        return self.record.deployment_key

    @property
    def deployment_id(self) -> str:
        return self.record.deployment_id

    @property
    def paused(self) -> bool:
        return self.record.status == "paused"

    @property
    def deadline_enforced(self) -> bool:
        """Not while paused, nor while healthy trial instances wait for promotion (R9)."""
        return self.record.status == "running" and self.policy.progress_deadline_ms > 0

    def owns(self, instance: Instance) -> bool:
        return self.new.get(instance.agent_id) is instance

    def running_description(self) -> str:
        if self.stage is Stage.TRIAL and not self.manual_promotion and self.policy.auto_promote:
            return PENDING_AUTO_PROMOTION
        return RUNNING

    # ---- events in -----------------------------------------------------------------------------

    def adopt(self, instances: list[Instance]) -> None:
        """Take over this deployment's live instances after a controller restart.

        Progress is rebuilt from them: the newest attempt per agent (its id ends in the attempt number) is
        the agent's new instance; a canary already primary means the trial was promoted.
        """
        for instance in sorted(instances, key=_attempt):
            agent_id = instance.agent_id
            self.new[agent_id] = instance
            if instance.role is not Role.PRIMARY:
                self.trial[agent_id] = instance
            if instance.healthy:
                self.healthy.add(agent_id)
            elif instance.healthy is None:
                self.in_flight += 1
        if self.stage is Stage.TRIAL:
            promoted = any(a in self.new and self.new[a].role is Role.PRIMARY for a in self.trial_pending)
            if promoted:
                self.stage, self.trial, self.trial_pending = Stage.ROLLING, {}, []
            else:
                self.trial_pending = [a for a in self.trial_pending if a not in self.trial]

    def start(self, now: float) -> None:
        self._advance(now)

    def on_verdict(self, instance: Instance, verdict: Verdict, now: float) -> None:
        agent_id = instance.agent_id
        counters = self.record.counters
        if verdict is Verdict.HEALTHY:
            self.in_flight -= 1
            self.healthy.add(agent_id)
            self.set(now, counters=counters.add(healthy=1))
            self.event("deployment_instance_healthy", now, instance_id=instance.instance_id, agent_id=agent_id)
            self._extend_deadline(now + self.policy.progress_deadline_ms)
            self._advance(now)
            return
        if agent_id in self.healthy:
            self.healthy.discard(agent_id)
            counters = counters.add(healthy=-1)
        else:
            self.in_flight -= 1
        self.set(now, counters=counters.add(unhealthy=1))
        self.event("deployment_instance_unhealthy", now, instance_id=instance.instance_id, agent_id=agent_id)
        if self.record.status == "awaiting_promotion":
            # back to running: the deadline, suspended while waiting, starts again as after a resume
            self.set(now, status="running", description=self.running_description())
            self._reset_deadline(now)
        elif self.record.previous_status == "awaiting_promotion":
            self.set(now, previous_status="running")
        self._replace_unhealthy(instance, now)

    def promote(self, now: float) -> None:
        """Trial instances become primary; the rolling stage goes on (R6, R7)."""
        trial = list(self.trial.values())
        self.actuator.promote_trial(self, trial, now)
        self.stage = Stage.ROLLING
        self.trial = {}
        self.set(now, status="running", description=RUNNING)
        self.event("deployment_promoted", now, version=self.version.version)
        self._reset_deadline(now)
        self._advance(now)

    def pause(self, now: float, reason: str | None) -> None:
        if self.paused:
            return
        self.set(now, previous_status=self.record.status, status="paused", description=reason or PAUSED)
        self.event("deployment_paused", now, reason=reason or PAUSED)
        self._reset_deadline(now)

    def resume(self, now: float, reason: str | None) -> None:
        """Back to the status before the pause (MirrorNeuron always says running; we restore)."""
        if not self.paused:
            return
        status = self.record.previous_status or "running"
        description = AWAITING_PROMOTION if status == "awaiting_promotion" else self.running_description()
        self.set(now, status=status, description=description, previous_status=None)
        self.event("deployment_running", now, reason=reason or "resumed by operator")
        self._reset_deadline(now)
        self._advance(now)

    def deadline_passed(self, now: float) -> bool:
        deadline = self.record.require_progress_by_ms
        return self.deadline_enforced and deadline is not None and now >= deadline

    def end(self, now: float, status: str, description: str, event: str, **fields: Any) -> None:
        """Stop what was never promoted and freeze the record (failure or cancellation, R4, R10)."""
        for instance in self.trial.values():
            self.actuator.stop(instance, now)
        self.trial = {}
        self.set(now, status=status, description=description, remaining_agent_ids=self.queue)
        self.event(event, now, **fields)

    # ---- the machine ---------------------------------------------------------------------------

    def _advance(self, now: float) -> None:
        if not self.record.active or self.paused:
            return
        if self.stage is Stage.TRIAL:
            while self.trial_pending:
                self._place(self.trial_pending.pop(0), self.trial_role, now)
            if len(self.healthy) < len(self.trial) or self.record.status == "awaiting_promotion":
                return
            self.event(
                "deployment_canary_ready",
                now,
                version=self.version.version,
                canary_agent_ids=list(self.trial),
            )
            if self.manual_promotion:
                self.set(now, status="awaiting_promotion", description=AWAITING_PROMOTION)
                return
            self.promote(now)
            return
        limit = self.policy.max_parallel if self.mode is Mode.AGENT_LEVEL else UNLIMITED
        while self.queue and (limit == UNLIMITED or self.in_flight < limit):
            agent_id, self.queue = self.queue.popleft()
            self._place(agent_id, Role.PRIMARY, now)
        self.set(now, remaining_agent_ids=self.queue)
        if not self.queue and len(self.healthy) == self.desired:
            self.actuator.succeeded(self, now)

    def _place(self, agent_id: str, role: Role, now: float) -> None:
        instance = self.actuator.place(self, agent_id, role, now)
        self.new[agent_id] = instance
        if role is not Role.PRIMARY:
            self.trial[agent_id] = instance
        self.in_flight += 1
        counters = self.record.counters
        self.set(now, counters=counters.add(placed=1))
        self.event(
            "deployment_instance_placed",
            now,
            instance_id=instance.instance_id,
            agent_id=agent_id,
            role=str(role),
            version=self.version.version,
        )
        if self.record.require_progress_by_ms is None:
            self._extend_deadline(now + self.policy.progress_deadline_ms)

    def _replace_unhealthy(self, instance: Instance, now: float) -> None:
        """R9: PD 0 or no reschedule attempts left fails at once; otherwise place a replacement."""
        agent_id = instance.agent_id
        used = self.record.reschedules.get(agent_id, 0)
        if self.policy.progress_deadline_ms == 0 or used >= self.manifest.reschedule.attempts:
            self.actuator.failed(self, now, FAILED_UNHEALTHY)
            return
        self.set(now, reschedules={**self.record.reschedules, agent_id: used + 1})
        self.actuator.stop(instance, now)
        del self.new[agent_id]
        if agent_id in self.trial:
            del self.trial[agent_id]
            self.trial_pending.append(agent_id)
        elif self.paused:
            self.queue = self.queue.pushleft(agent_id)
        else:  # R5: placed at once, outside the budget, and it counts as in flight
            self._place(agent_id, Role.PRIMARY, now)
        self._advance(now)

    def _extend_deadline(self, at: float) -> None:
        if self.policy.progress_deadline_ms <= 0:
            return
        current = self.record.require_progress_by_ms
        if current is None or at > current:
            self.record.require_progress_by_ms = at
            self.touch()
            self.actuator.deadline_moved(self)

    def _reset_deadline(self, now: float) -> None:
        if self.policy.progress_deadline_ms > 0:
            self.record.require_progress_by_ms = now + self.policy.progress_deadline_ms
            self.touch()
            self.actuator.deadline_moved(self)


def _attempt(instance: Instance) -> int:
    """Instance ids are `<deployment id>.<agent id>.<attempt>`."""
    return int(instance.instance_id.rsplit(".", 1)[-1])


def canary_count(policy_canary: int, strategy: str, changed: int) -> int:
    """R3: min(canary, n) when canary > 0; 1 for the canary strategy with canary 0; else 0."""
    if changed == 0:
        return 0
    if policy_canary > 0:
        return min(policy_canary, changed)
    return 1 if strategy == "canary" else 0
