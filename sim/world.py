"""The simulated world: the Runtime port on a `simpy.Environment`, and the driver that owns time.

Each placed instance lives out its `Fate` (start, ready, checks, start failures, crashes, in-place restarts
with `policies.restart`) and reports raw facts. The controller is never called back from inside `place` or
`stop`: those only start or mark lives, because the controller calls them synchronously in the middle of its
own work.

A life is a generator of waits run on plain SimPy events (`sim.lives`), not a SimPy process: it takes the same
events in the same order as a process would, without a process's bookkeeping, which cost more than the life.

Cancellation is lazy: stopping or crashing an instance bumps its `epoch`, and a life that wakes up to a
changed epoch returns without a word. Whether anything more can happen is therefore tracked explicitly
(`SimRuntime.busy`), not read off the event queue, which may still hold such stale timeouts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

import simpy

from mn_deploy_core.ports import Fact, FactKind, Placement
from sim import lives
from sim.behavior import NEVER, Behavior, Fate
from sim.streams import RandomStreams


class SimulationError(RuntimeError):
    """The world found the controller breaking the driver contract (a bug there, not in the scenario)."""


class DrivenController(Protocol):
    """The part of the controller a driver uses."""

    def observe(self, fact: Fact, now: float) -> None: ...

    def tick(self, now: float) -> None: ...

    def next_wakeup(self) -> float | None: ...

    def new_wakeup(self) -> float | None: ...


class SimInstance:
    """One placement as the world runs it: its draws, which run it is on, whether it is up or stopped.
    What happened to it is recorded by the core, from the facts this instance reports."""

    __slots__ = (
        "busy",
        "epoch",
        "fate",
        "manifest_name",
        "placed_ms",
        "placement",
        "restarts",
        "stopped",
        "up",
    )

    def __init__(self, placement: Placement, placed_ms: float) -> None:
        self.placement = placement
        self.placed_ms = placed_ms
        self.manifest_name: str | None = None
        self.fate: Fate | None = None
        self.epoch = 0
        self.busy = True
        self.up = False
        self.restarts = 0
        self.stopped = False


class SimRuntime:
    """Implements `Runtime` by starting one life per instance; facts go to `connect`'s sink."""

    def __init__(
        self,
        env: simpy.Environment,
        streams: RandomStreams,
        manifest_of: Callable[[Placement], str | None],
        behavior_of: Callable[[str | None, str], Behavior],
    ) -> None:
        self.env = env
        self._streams = streams
        self._manifest_of = manifest_of
        self._behavior_of = behavior_of
        self._instances: dict[str, SimInstance] = {}
        self._sink: Callable[[Fact], None] = _unconnected
        self._on_idle: Callable[[], None] = _nothing
        self.busy = 0

    def connect(self, sink: Callable[[Fact], None], on_idle: Callable[[], None]) -> None:
        """Where facts go, and whom to tell when an instance has nothing more to do on its own."""
        self._sink = sink
        self._on_idle = on_idle

    def place(self, placement: Placement) -> None:
        instance = SimInstance(placement, self.env.now)
        self._instances[placement.instance_id] = instance
        self.busy += 1
        lives.start(self.env, self._life(instance, 0, crashed=False))

    def stop(self, instance_id: str) -> None:
        instance = self._instances.get(instance_id)
        if instance is None or instance.stopped:
            return
        instance.stopped = True
        instance.epoch += 1
        instance.up = False
        instance.fate = None  # never runs again: its draws are a third of a large run's memory
        self._release(instance)

    def crash(self, agent_id: str, key: str | None = None) -> int:
        """Crash every running instance of `agent_id` (of deployment key `key`, if given) once (an injected
        fault); returns how many."""
        crashed = 0
        for instance in self._instances.values():
            placement = instance.placement
            if placement.agent_id == agent_id and instance.up and key in (None, placement.deployment_key):
                instance.epoch += 1
                instance.up = False
                if not instance.busy:
                    instance.busy = True
                    self.busy += 1
                lives.start(self.env, self._life(instance, instance.epoch, crashed=True))
                crashed += 1
        return crashed

    def instances(self) -> Iterator[SimInstance]:
        """Every instance ever placed, in placement order."""
        return iter(self._instances.values())

    def _release(self, instance: SimInstance) -> None:
        if instance.busy:
            instance.busy = False
            self.busy -= 1

    def _report(self, instance: SimInstance, epoch: int, kind: FactKind, check: str = "") -> bool:
        """Send one fact; False when the instance was stopped meanwhile (possibly by this very fact)."""
        if instance.epoch != epoch:
            return False
        self._sink(Fact(instance.placement.instance_id, kind, check))
        return instance.epoch == epoch

    def _fate(self, instance: SimInstance) -> Fate:
        """Drawn at the first step, not in `place`: a deploy's version is named only once `deploy` returns."""
        if instance.fate is None:
            placement = instance.placement
            instance.manifest_name = self._manifest_of(placement)
            behavior = self._behavior_of(instance.manifest_name, placement.agent_id)
            instance.fate = behavior.fate(self._streams, placement.restart.attempts + 1)
        return instance.fate

    def _life(self, instance: SimInstance, epoch: int, *, crashed: bool) -> lives.Waits:
        fate = self._fate(instance)
        if not crashed and not self._report(instance, epoch, FactKind.PLACED):
            return
        restart = instance.placement.restart
        while True:
            if crashed:
                if not self._report(instance, epoch, FactKind.EXITED):
                    return
                if instance.restarts >= restart.attempts:
                    self._report(instance, epoch, FactKind.FAILED)
                    break
                if restart.delay_ms:
                    yield restart.delay_ms
                    if instance.epoch != epoch:
                        return
                instance.restarts += 1
                if not self._report(instance, epoch, FactKind.RESTARTED):
                    return
            run = instance.restarts
            if fate.start_ms[run]:
                yield fate.start_ms[run]
                if instance.epoch != epoch:
                    return
            instance.up = True
            if not self._report(instance, epoch, FactKind.RUNNING):
                return
            crash_at = min(fate.crash_after_ms[run], fate.ready_ms[run] if fate.start_fails[run] else NEVER)
            completes = instance.placement.batch and fate.run_ms[run] < crash_at
            crash_at = min(crash_at, fate.run_ms[run])  # a service agent that exits 0 has crashed all the same
            elapsed = 0.0
            for at, facts in _milestones(fate, instance.placement.checks, run):
                if crash_at <= at:
                    break
                if at > elapsed:
                    yield at - elapsed
                    if instance.epoch != epoch:
                        return
                    elapsed = at
                for kind, check in facts:
                    if not self._report(instance, epoch, kind, check):
                        return
            if crash_at == NEVER:
                break
            yield crash_at - elapsed
            if instance.epoch != epoch:
                return
            instance.up = False
            if completes:
                self._report(instance, epoch, FactKind.COMPLETED)
                break
            crashed = True
        self._release(instance)
        self._on_idle()


def _milestones(fate: Fate, checks: tuple[str, ...], run: int) -> list[tuple[float, list[tuple[FactKind, str]]]]:
    """(ms after running, facts) of one run that does not crash: ready, then every declared check at once."""
    ready_at = fate.ready_ms[run]
    steps = [(ready_at, [(FactKind.READY, "")])]
    if checks:
        kind = FactKind.CHECK_FAILING if fate.checks_fail else FactKind.CHECK_PASSING
        steps.append((ready_at + fate.check_ms[run], [(kind, name) for name in checks]))
    return steps


def _unconnected(fact: Fact) -> None:
    raise SimulationError(f"fact {fact.kind} for {fact.instance_id} before the runtime was connected")


def _nothing() -> None:
    """No idle listener yet."""


class Driver:
    """Owns simulated time: feeds facts to the controller, ticks it at `next_wakeup()`, and fires
    `finished` once nothing more can happen (no hold, no busy instance, no controller timer)."""

    def __init__(self, env: simpy.Environment, controller: DrivenController, runtime: SimRuntime) -> None:
        self.env = env
        self.controller = controller
        self.finished = env.event()
        self._runtime = runtime
        self._holds = 0
        self._alarm_at: float | None = None
        runtime.connect(self.observe, self.settle)

    def hold(self) -> None:
        """Keep the run open (the operator does while actions remain)."""
        self._holds += 1

    def release(self) -> None:
        self._holds -= 1
        self.settle()

    def observe(self, fact: Fact) -> None:
        self.controller.observe(fact, self.env.now)
        self.after_call()

    def after_call(self) -> None:
        """After any controller call: it may have set an earlier timer, or have nothing left to do."""
        self._arm(self.controller.new_wakeup())
        self.settle()

    def settle(self) -> None:
        if self._runtime.busy or self._holds or self.finished.triggered:  # the likeliest first: after every fact
            return
        if self.controller.next_wakeup() is None:
            self.finished.succeed()

    def _arm(self, due: float | None) -> None:
        if due is None or (self._alarm_at is not None and self._alarm_at <= due):
            return
        self._alarm_at = due
        lives.late(self.env, max(due - self.env.now, 0.0), self._wake)

    def _wake(self, _alarm: simpy.Event) -> None:
        """An alarm rang: it is heard after whatever else was due at that time (facts first)."""
        now = self.env.now
        if self._alarm_at is not None and self._alarm_at <= now:
            self._alarm_at = None
        due = self.controller.next_wakeup()
        if due is not None and due <= now:
            self.controller.tick(now)
            due = self.controller.next_wakeup()
            if due is not None and due <= now:
                raise SimulationError(f"controller still due at {due} ms after tick({now})")
        self._arm(due)
        self.settle()
