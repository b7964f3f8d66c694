"""One active deployment's state machine (R5-R10): runs its planner's steps and returns effects.

A rollout never calls the controller back. Every method that may decide something returns the effects of
its decision, in order: place an instance, stop one, promote a trial, finish, fail, wake me at a time. The
controller applies them through the ports (Nomad's narrow `deploymentTriggers`). `_advance` is the one place
that moves the machine forward after anything changes; `status.transition` is the one way to a new status.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mn_deploy_core.effects import Effect, Fail, Finish, Place, Promote, Stop, Wake
from mn_deploy_core.fleet import Instance
from mn_deploy_core.health import Verdict
from mn_deploy_core.manifest import Manifest
from mn_deploy_core.ports import Role
from mn_deploy_core.records import AgentQueue, DeploymentRecord, Event, VersionRecord, iso_timestamp
from mn_deploy_core.status import (
    AWAITING_PROMOTION,
    FAILED_UNHEALTHY,
    PAUSED,
    PENDING_AUTO_PROMOTION,
    RUNNING,
    Status,
    Trigger,
    transition,
)
from mn_deploy_core.strategies import UNLIMITED, Planner, Step
from mn_deploy_core.timers import Kind


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
        record = self.record
        for name, value in changes.items():
            setattr(record, name, value)
        record.updated_at = iso_timestamp(now)
        self.touch()

    def move(self, trigger: Trigger, now: float, description: str | None = None) -> bool:
        """Apply `trigger` to the record's status (status.py's table); False when it changes nothing."""
        record = self.record
        status, previous = transition(record.deployment_id, record.status, trigger, record.previous_status)
        if (status, previous) == (record.status, record.previous_status) and description is None:
            return False
        self.set(now, status=status, previous_status=previous)
        if description is not None:
            self.set(now, description=description)
        return True


class Rollout(Journal):
    """The plan and progress of one active deployment.

    Progress: `step` (the current one), `queue` (agents not placed yet: the current step's first, then every
    later step's), `new` (each agent's instance of this deployment), `trial` (those not promoted yet),
    `healthy` (agents whose new instance is healthy) and `in_flight` (placed, no verdict yet). A step is done
    when its agents are placed and every agent up to its end is healthy.
    """

    def __init__(
        self,
        touched: dict[str, Journal],
        record: DeploymentRecord,
        version: VersionRecord,
        job_id: str,
        manifest: Manifest,
        planner: Planner,
        steps: Sequence[Step],
        remaining: Sequence[str] | None = None,
    ) -> None:
        super().__init__(record, touched)
        self.version = version
        self.job_id = job_id
        self.manifest = manifest
        self.policy = manifest.policy
        self.planner = planner
        self.steps = tuple(steps)
        ends, total = [], 0
        for step in self.steps:
            total += len(step.agents)
            ends.append(total)
        self.ends = tuple(ends)
        self.desired = total
        self.step = record.step
        planned = tuple(a for s in self.steps for a in s.agents)
        self.queue = AgentQueue(planned if remaining is None else tuple(remaining))
        self.new: dict[str, str] = {}
        self.trial: dict[str, str] = {}
        self.healthy: set[str] = set()
        self.in_flight = 0
        self.gate_open = False
        self._out: list[Effect] = []

    # ---- queries -------------------------------------------------------------------------------

    @property
    def key(self) -> str:
        return self.record.deployment_key

    @property
    def deployment_id(self) -> str:
        return self.record.deployment_id

    @property
    def paused(self) -> bool:
        return self.record.status == Status.PAUSED

    @property
    def pause_until(self) -> float | None:
        """When the current step's pause ends, while it lasts."""
        return self.record.step_pause_until_ms

    @property
    def deadline_enforced(self) -> bool:
        """Not while paused, nor while a done step waits for promotion or for its pause to end (R9)."""
        return self.record.status == Status.RUNNING and self.policy.progress_deadline_ms > 0 and not self._pausing

    @property
    def _pausing(self) -> bool:
        return self.record.step_pause_until_ms is not None

    @property
    def _current(self) -> Step:
        return self.steps[self.step]

    def owns(self, instance: Instance) -> bool:
        return self.new.get(instance.agent_id) == instance.instance_id

    def attempt(self, agent_id: str) -> int:
        """How many replacements this agent has had here: the next instance id's attempt number."""
        return self.record.reschedules.get(agent_id, 0)

    def running_description(self) -> str:
        step = self._current
        if step.trial and not step.manual and self.policy.auto_promote:
            return PENDING_AUTO_PROMOTION
        return RUNNING

    # ---- events in; each returns the effects of what it decided -------------------------------------

    def adopt(self, instances: list[Instance]) -> None:
        """Take over this deployment's live instances after a controller restart.

        Progress is rebuilt from them: the newest attempt per agent (its id ends in the attempt number) is
        the agent's new instance; a trial instance already primary means its step was promoted.
        """
        for instance in sorted(instances, key=_attempt):
            agent_id = instance.agent_id
            self.new[agent_id] = instance.instance_id
            if instance.role is not Role.PRIMARY:
                self.trial[agent_id] = instance.instance_id
            if instance.healthy:
                self.healthy.add(agent_id)
            elif instance.healthy is None:
                self.in_flight += 1

    def start(self, now: float) -> list[Effect]:
        self._advance(now)
        return self._take()

    def on_verdict(self, instance: Instance, verdict: Verdict, now: float) -> list[Effect]:
        agent_id = instance.agent_id
        counters = self.record.counters
        if verdict is Verdict.HEALTHY:
            self.in_flight -= 1
            self.healthy.add(agent_id)
            self.set(now, counters=counters.add(healthy=1))
            self.event("deployment_instance_healthy", now, instance_id=instance.instance_id, agent_id=agent_id)
            self._extend_deadline(now + self.policy.progress_deadline_ms)
            self._advance(now)
            return self._take()
        if agent_id in self.healthy:
            self.healthy.discard(agent_id)
            counters = counters.add(healthy=-1)
        else:
            self.in_flight -= 1
        self.set(now, counters=counters.add(unhealthy=1))
        self.event("deployment_instance_unhealthy", now, instance_id=instance.instance_id, agent_id=agent_id)
        self.gate_open = False
        self.set(now, step_pause_until_ms=None)
        awaiting = self.record.status == Status.AWAITING_PROMOTION
        self.move(Trigger.TRIAL_FAILED, now, self.running_description() if awaiting else None)
        if awaiting:  # the deadline, suspended while waiting, starts again as after a resume
            self._reset_deadline(now)
        self._replace_unhealthy(instance, now)
        return self._take()

    def promote(self, now: float) -> list[Effect]:
        """The operator lets the waiting step go on (R6, R7)."""
        self.move(Trigger.PROMOTE, now, RUNNING)
        self.gate_open = True
        self._reset_deadline(now)
        self._advance(now)
        return self._take()

    def pause_elapsed(self, now: float) -> list[Effect]:
        """The current step's pause is over."""
        self.gate_open = True
        self._reset_deadline(now)
        self._advance(now)
        return self._take()

    def pause(self, now: float, reason: str | None) -> list[Effect]:
        if self.move(Trigger.PAUSE, now):
            self.set(now, description=reason or PAUSED)
            self.event("deployment_paused", now, reason=reason or PAUSED)
            self._reset_deadline(now)
        return self._take()

    def resume(self, now: float, reason: str | None) -> list[Effect]:
        """Back to the status before the pause (MirrorNeuron always says running; we restore)."""
        if not self.paused:
            return []
        self.move(Trigger.RESUME, now)
        awaiting = self.record.status == Status.AWAITING_PROMOTION
        self.set(now, description=AWAITING_PROMOTION if awaiting else self.running_description())
        self.event("deployment_running", now, reason=reason or "resumed by operator")
        self._reset_deadline(now)
        self._advance(now)
        return self._take()

    def deadline_passed(self, now: float) -> bool:
        deadline = self.record.require_progress_by_ms
        return self.deadline_enforced and deadline is not None and now >= deadline

    def end(self, now: float, trigger: Trigger, description: str, event: str, **fields: Any) -> list[Effect]:
        """Stop what was never promoted and freeze the record (failure or cancellation, R4, R10)."""
        self._out.extend(Stop(instance_id) for instance_id in self.trial.values())
        self.trial = {}
        self.move(trigger, now, description)
        self.set(now, remaining_agent_ids=self.queue, step_pause_until_ms=None)
        self.event(event, now, **fields)
        return self._take()

    # ---- the machine ---------------------------------------------------------------------------

    def _take(self) -> list[Effect]:
        out, self._out = self._out, []
        return out

    def _advance(self, now: float) -> None:
        while self.record.active and not self.paused:
            step = self._current
            self._place_pending(step, now)
            if self._pending or len(self.healthy) < self.ends[self.step]:
                return
            if self.record.status == Status.AWAITING_PROMOTION or not self._gate_passed(step, now):
                return
            self._pass_step(step, now)
            if self.step == len(self.steps):
                self._out.append(Finish())
                return

    @property
    def _pending(self) -> int:
        """Agents of the current step not placed yet (every later step's agents are still queued)."""
        return len(self.queue) - (self.desired - self.ends[self.step])

    def _place_pending(self, step: Step, now: float) -> None:
        budget = step.budget
        while self._pending and (budget == UNLIMITED or self.in_flight < budget):
            agent_id, self.queue = self.queue.popleft()
            self._place(agent_id, step.role, step.phase, now)
        self.set(now, remaining_agent_ids=self.queue)

    def _gate_passed(self, step: Step, now: float) -> bool:
        """A done step goes on at once, once promoted (manual), or once its pause is over. A trial step's end is
        `deployment_canary_ready`; a later step's that waits is `deployment_step_ready`; both say how it goes on."""
        if self.gate_open:
            return True
        if self._pausing:
            return False
        promotion = "manual" if step.manual else "after_pause" if step.pause_ms else "automatic"
        version = self.version.version
        if step.trial:
            trial = list(self.trial)
            self.event("deployment_canary_ready", now, version=version, canary_agent_ids=trial, promotion=promotion)
        elif promotion != "automatic":
            self.event("deployment_step_ready", now, version=version, step=self.step, promotion=promotion)
        if step.manual:
            self.move(Trigger.TRIAL_READY, now, AWAITING_PROMOTION)
            return False
        if step.pause_ms:
            self.set(now, step_pause_until_ms=now + step.pause_ms)
            self._out.append(Wake(now + step.pause_ms, Kind.STEP_PAUSE))
            return False
        return True

    def _pass_step(self, step: Step, now: float) -> None:
        """Promote a trial step's instances; the next step starts. Every promotion, and every manual step's
        promote, is an event."""
        if step.trial:
            self._out.append(Promote(tuple(self.trial.values())))
            self.trial = {}
            if not self.gate_open:  # promoted without an operator
                self.move(Trigger.AUTO_PROMOTE, now, RUNNING)
                self._reset_deadline(now)
        if step.trial or step.manual:
            self.event("deployment_promoted", now, version=self.version.version)
        self.step += 1
        self.gate_open = False
        self.set(now, step=self.step, step_pause_until_ms=None)

    def _place(self, agent_id: str, role: Role, phase: str, now: float) -> None:
        instance_id = f"{self.deployment_id}.{agent_id}.{self.attempt(agent_id)}"
        self.new[agent_id] = instance_id
        if role is not Role.PRIMARY:
            self.trial[agent_id] = instance_id
        self.in_flight += 1
        self._out.append(Place(instance_id, agent_id, role, phase))
        self.set(now, counters=self.record.counters.add(placed=1))
        self.event(
            "deployment_instance_placed",
            now,
            instance_id=instance_id,
            agent_id=agent_id,
            role=role.value,  # the shared text: `str` would copy it into every event
            version=self.version.version,
        )
        if self.record.require_progress_by_ms is None:
            self._extend_deadline(now + self.policy.progress_deadline_ms)

    def _replace_unhealthy(self, instance: Instance, now: float) -> None:
        """R9: PD 0 or no reschedule attempts left fails at once; otherwise place a replacement."""
        agent_id = instance.agent_id
        used = self.record.reschedules.get(agent_id, 0)
        if self.policy.progress_deadline_ms == 0 or used >= self.manifest.reschedule.attempts:
            self._out.append(Fail(FAILED_UNHEALTHY))
            return
        self.set(now, reschedules={**self.record.reschedules, agent_id: used + 1})
        self._out.append(Stop(instance.instance_id))
        del self.new[agent_id]
        if agent_id in self.trial or self.paused:  # placed again with its step, or once resumed
            self.trial.pop(agent_id, None)
            self.queue = self.queue.pushleft(agent_id)
            self.set(now, remaining_agent_ids=self.queue)
        else:  # R5: placed at once, outside the budget, and it counts as in flight
            self._place(agent_id, Role.PRIMARY, self._current.phase, now)
        self._advance(now)

    def _extend_deadline(self, at: float) -> None:
        """Progress moves the deadline later. Only a first deadline needs a timer: the entry set for an earlier
        one stands until its time, and then waits for the deadline as it is by then (`Controller.tick`), so a
        deadline moved by every verdict costs one timer per `progress_deadline_ms`, not one per verdict."""
        if self.policy.progress_deadline_ms <= 0:
            return
        current = self.record.require_progress_by_ms
        if current is None or at > current:
            self.record.require_progress_by_ms = at
            self.touch()
            if current is None:
                self._out.append(Wake(at))

    def _reset_deadline(self, now: float) -> None:
        if self.policy.progress_deadline_ms > 0:
            self.record.require_progress_by_ms = now + self.policy.progress_deadline_ms
            self.touch()
            self._out.append(Wake(self.record.require_progress_by_ms))


def _attempt(instance: Instance) -> int:
    """Instance ids are `<deployment id>.<agent id>.<attempt>`."""
    return int(instance.instance_id.rsplit(".", 1)[-1])
