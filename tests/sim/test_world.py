"""The simulated world on its own: instance processes report the facts of their behavior, stopped
instances fall silent, and the driver ticks the controller exactly at `next_wakeup()`."""

from __future__ import annotations

import heapq

import pytest
import simpy

from mn_deploy_core.ports import Fact, FactKind, Placement
from sim.behavior import Behavior
from sim.distributions import Const
from sim.streams import RandomStreams
from sim.world import Driver, SimRuntime, SimulationError
from tests.placements import a_placement

K = FactKind


class RecordingController:
    """Records facts and ticks; optional timers; stops an instance on a chosen fact, as a controller may."""

    def __init__(self) -> None:
        self.facts: list[tuple[float, str, FactKind, str]] = []
        self.ticks: list[float] = []
        self.timers: list[float] = []
        self.stop_on: tuple[str, FactKind] | None = None
        self.runtime: SimRuntime | None = None
        self.sticky = False

    def observe(self, fact: Fact, now: float) -> None:
        self.facts.append((now, fact.instance_id, fact.kind, fact.check))
        if self.stop_on == (fact.instance_id, fact.kind) and self.runtime is not None:
            self.runtime.stop(fact.instance_id)

    def tick(self, now: float) -> None:
        self.ticks.append(now)
        while self.timers and self.timers[0] <= now and not self.sticky:
            heapq.heappop(self.timers)

    def next_wakeup(self) -> float | None:
        return self.timers[0] if self.timers else None

    def new_wakeup(self) -> float | None:
        """Tests set `timers` directly, so any of them may be new."""
        return self.next_wakeup()


def placement(instance_id: str = "i1", agent_id: str = "a", checks: tuple[str, ...] = ("api:0", "api:1")) -> Placement:
    return a_placement(instance_id=instance_id, agent_id=agent_id, checks=checks)


def world(behavior: Behavior) -> tuple[simpy.Environment, SimRuntime, RecordingController, Driver]:
    env = simpy.Environment(initial_time=0.0)
    runtime = SimRuntime(env, RandomStreams.from_seed(0), lambda p: "m", lambda name, agent: behavior)
    controller = RecordingController()
    controller.runtime = runtime
    driver = Driver(env, controller, runtime)
    return env, runtime, controller, driver


STEADY = Behavior(start_ms=Const(100.0), ready_ms=Const(20.0), check_ms=Const(5.0))


def kinds(controller: RecordingController) -> list[FactKind]:
    return [kind for _, _, kind, _ in controller.facts]


def test_a_healthy_instance_reports_running_ready_then_every_check() -> None:
    env, runtime, controller, driver = world(STEADY)
    runtime.place(placement())
    env.run(until=driver.finished)
    assert controller.facts == [
        (0.0, "i1", K.PLACED, ""),
        (100.0, "i1", K.RUNNING, ""),
        (120.0, "i1", K.READY, ""),
        (125.0, "i1", K.CHECK_PASSING, "api:0"),
        (125.0, "i1", K.CHECK_PASSING, "api:1"),
    ]
    assert env.now == 125.0 and runtime.busy == 0


def test_start_failures_use_up_the_restart_policy_then_fail() -> None:
    env, runtime, controller, driver = world(Behavior(start_ms=Const(100.0), ready_ms=Const(20.0), start_failure=1.0))
    runtime.place(placement())
    env.run(until=driver.finished)
    attempt = [K.RUNNING, K.EXITED]
    assert kinds(controller) == [K.PLACED, *attempt, K.RESTARTED, *attempt, K.RESTARTED, *attempt, K.FAILED]
    exits = [t for t, _, kind, _ in controller.facts if kind is K.EXITED]
    assert exits == [120.0, 1240.0, 2360.0]
    assert next(runtime.instances()).restarts == 2


def test_a_crash_after_running_restarts_in_place() -> None:
    behavior = Behavior(start_ms=Const(10.0), ready_ms=Const(0.0), check_ms=Const(0.0), crash_after_ms=Const(500.0))
    env, runtime, controller, driver = world(behavior)
    runtime.place(placement(checks=()))
    env.run(until=driver.finished)
    run = [K.RUNNING, K.READY, K.EXITED]
    assert kinds(controller) == [K.PLACED, *run, K.RESTARTED, *run, K.RESTARTED, *run, K.FAILED]
    assert [t for t, _, kind, _ in controller.facts if kind is K.EXITED] == [510.0, 2020.0, 3530.0]


def test_checks_that_never_pass_report_failing() -> None:
    env, runtime, controller, driver = world(Behavior(check_failure=1.0))
    runtime.place(placement(checks=("api:0",)))
    env.run(until=driver.finished)
    assert kinds(controller) == [K.PLACED, K.RUNNING, K.READY, K.CHECK_FAILING]


def test_a_stopped_instance_reports_nothing_more() -> None:
    env, runtime, controller, driver = world(STEADY)
    controller.stop_on = ("i1", K.READY)
    runtime.place(placement())
    env.run(until=driver.finished)
    assert kinds(controller) == [K.PLACED, K.RUNNING, K.READY]
    assert next(runtime.instances()).stopped


def test_stopping_a_waiting_instance_silences_it_and_ends_the_run() -> None:
    env, runtime, controller, driver = world(STEADY)
    runtime.place(placement())
    env.run(until=50.0)
    runtime.stop("i1")
    runtime.stop("i1")
    driver.settle()
    env.run(until=driver.finished)
    assert kinds(controller) == [K.PLACED]
    assert env.now == 50.0


def test_an_injected_crash_hits_running_instances_of_that_agent_once() -> None:
    env, runtime, controller, driver = world(STEADY)
    driver.hold()
    runtime.place(placement("i1", "a"))
    runtime.place(placement("i2", "b"))
    env.run(until=200.0)
    controller.facts.clear()
    assert runtime.crash("a") == 1
    driver.release()
    env.run(until=driver.finished)
    assert {iid for _, iid, _, _ in controller.facts} == {"i1"}
    assert kinds(controller) == [K.EXITED, K.RESTARTED, K.RUNNING, K.READY, K.CHECK_PASSING, K.CHECK_PASSING]
    assert [t for t, *_ in controller.facts] == [200.0, 1200.0, 1300.0, 1320.0, 1325.0, 1325.0]


def test_the_driver_ticks_at_each_wakeup_even_one_that_moved_earlier() -> None:
    env, runtime, controller, driver = world(STEADY)
    controller.timers = [500.0]
    driver.after_call()
    runtime.place(placement())
    heapq.heappush(controller.timers, 300.0)
    driver.after_call()
    env.run(until=driver.finished)
    assert controller.ticks == [300.0, 500.0]
    assert env.now == 500.0


def test_a_controller_still_due_after_its_tick_is_reported() -> None:
    env, _, controller, driver = world(STEADY)
    controller.timers, controller.sticky = [10.0], True
    driver.after_call()
    with pytest.raises(SimulationError, match=r"still due at 10\.0 ms after tick"):
        env.run(until=driver.finished)
