"""R8: instance health: raw facts in, one healthy / unhealthy verdict per instance out.

Reference: SEMANTICS.md §7, reference/peers.md §2.3 (Nomad's client health watcher, which §7 follows).
The first half drives `HealthTracker` directly; the second drives it through the controller.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mn_deploy_core.health import HealthTracker, InstanceHealth, Verdict
from mn_deploy_core.ports import Fact, FactKind
from mn_deploy_core.records import Counters
from tests.scripted import World, service_manifest

KEY = "agent-api"
INST = "inst"


def tracked(
    min_healthy_ms: float = 1000, deadline_ms: float = 30_000, checks: int = 2, placed: float = 0
) -> HealthTracker:
    tracker = HealthTracker()
    tracker.track(INST, placed, min_healthy_ms, deadline_ms, checks)
    return tracker


def fact(kind: FactKind, check: str = "", instance_id: str = INST) -> Fact:
    return Fact(instance_id, kind, check)


def up(tracker: HealthTracker, now: float, checks: int = 2, instance_id: str = INST) -> Verdict | None:
    """Ready plus every check passing at `now`; the last verdict the facts gave."""
    verdict = tracker.observe(fact(FactKind.READY, instance_id=instance_id), now)
    for c in range(checks):
        verdict = tracker.observe(fact(FactKind.CHECK_PASSING, f"c{c}", instance_id), now) or verdict
    return verdict


def fire(tracker: HealthTracker, until: float) -> list[tuple[float, str, Verdict]]:
    """Every verdict whose timer falls by `until`, as a driver's tick would pop them."""
    verdicts = []
    while (due := tracker.timers.pop_due(until)) is not None:
        at, _, instance_id = due
        verdict = tracker.due(instance_id, at)
        if verdict is not None:
            verdicts.append((at, instance_id, verdict))
    return verdicts


# --- the tracker on its own ----------------------------------------------------------------------------


def test_r8_checks_mode_healthy_after_min_healthy_of_ready_and_all_checks() -> None:
    tracker = tracked(checks=2)
    assert tracker.observe(fact(FactKind.RUNNING), 0) is None
    assert tracker.observe(fact(FactKind.READY), 100) is None
    assert tracker.observe(fact(FactKind.CHECK_PASSING, "c0"), 200) is None
    # one check of two is not enough: only the healthy deadline is pending
    assert tracker.timers.next_at() == 30_000
    assert tracker.observe(fact(FactKind.CHECK_PASSING, "c1"), 500) is None
    # the window starts when the last condition holds (ready at 100, both checks at 500)
    assert tracker.timers.next_at() == 1500
    assert fire(tracker, 1499) == []
    assert fire(tracker, 1500) == [(1500, INST, Verdict.HEALTHY)]
    assert tracker.verdict(INST) is Verdict.HEALTHY
    assert tracker.serving(INST)
    assert tracker.timers.next_at() is None


def test_r8_checks_mode_needs_ready_as_well_as_checks() -> None:
    tracker = tracked(checks=1)
    tracker.observe(fact(FactKind.CHECK_PASSING, "c0"), 0)
    assert tracker.timers.next_at() == 30_000
    tracker.observe(fact(FactKind.READY), 2000)
    assert tracker.timers.next_at() == 3000
    assert fire(tracker, 3000) == [(3000, INST, Verdict.HEALTHY)]


def test_r8_agent_states_mode_ignores_checks() -> None:
    tracker = tracked(checks=0)
    assert tracker.observe(fact(FactKind.CHECK_FAILING, "c0"), 0) is None
    tracker.observe(fact(FactKind.READY), 100)
    assert tracker.timers.next_at() == 1100
    tracker.observe(fact(FactKind.CHECK_FAILING, "c0"), 600)
    tracker.observe(fact(FactKind.CHECK_PASSING, "c0"), 700)
    tracker.observe(fact(FactKind.CHECK_FAILING, "c0"), 800)
    assert tracker.timers.next_at() == 1100
    assert fire(tracker, 1100) == [(1100, INST, Verdict.HEALTHY)]
    assert tracker.serving(INST)


def test_r8_failing_check_restarts_min_healthy_clock_and_is_no_verdict() -> None:
    tracker = tracked(checks=2)
    up(tracker, 0)
    assert tracker.observe(fact(FactKind.CHECK_FAILING, "c1"), 900) is None
    assert tracker.verdict(INST) is None
    assert fire(tracker, 1000) == []
    assert tracker.timers.next_at() == 30_000
    assert tracker.observe(fact(FactKind.CHECK_PASSING, "c1"), 1200) is None
    assert tracker.timers.next_at() == 2200
    assert fire(tracker, 2200) == [(2200, INST, Verdict.HEALTHY)]


def test_r8_restart_restarts_min_healthy_clock_and_is_no_verdict() -> None:
    tracker = tracked(checks=1)
    up(tracker, 0, checks=1)
    assert tracker.observe(fact(FactKind.RESTARTED), 600) is None
    assert tracker.verdict(INST) is None
    assert fire(tracker, 1000) == []
    # a restart clears readiness and checks: both must come back, then a full window
    tracker.observe(fact(FactKind.READY), 700)
    assert tracker.timers.next_at() == 30_000
    tracker.observe(fact(FactKind.CHECK_PASSING, "c0"), 800)
    assert tracker.timers.next_at() == 1800
    assert fire(tracker, 1800) == [(1800, INST, Verdict.HEALTHY)]


def test_r8_exit_restarts_min_healthy_clock_and_is_no_verdict() -> None:
    tracker = tracked(checks=0)
    tracker.observe(fact(FactKind.READY), 0)
    assert tracker.observe(fact(FactKind.EXITED), 500) is None
    assert tracker.timers.next_at() == 30_000
    tracker.observe(fact(FactKind.READY), 600)
    assert fire(tracker, 1600) == [(1600, INST, Verdict.HEALTHY)]


def test_r8_not_healthy_by_placement_plus_healthy_deadline_is_unhealthy() -> None:
    tracker = tracked(deadline_ms=5000, checks=1, placed=10_000)
    tracker.observe(fact(FactKind.READY), 10_100)
    assert tracker.timers.next_at() == 15_000
    assert fire(tracker, 14_999) == []
    assert fire(tracker, 15_000) == [(15_000, INST, Verdict.UNHEALTHY)]
    assert not tracker.serving(INST)
    assert tracker.timers.next_at() is None
    # a late fact changes nothing: the verdict is given
    assert up(tracker, 15_500, checks=1) is None
    assert tracker.verdict(INST) is Verdict.UNHEALTHY


def test_r8_window_ending_after_the_healthy_deadline_is_unhealthy() -> None:
    tracker = tracked(deadline_ms=5000, checks=1)
    up(tracker, 4500, checks=1)
    # healthy would fall at 5500, after the deadline: the deadline wins
    assert tracker.timers.next_at() == 5000
    assert fire(tracker, 10_000) == [(5000, INST, Verdict.UNHEALTHY)]


def test_r8_window_ending_exactly_at_the_healthy_deadline_is_healthy() -> None:
    tracker = tracked(deadline_ms=5000, checks=1)
    up(tracker, 4000, checks=1)
    assert tracker.timers.next_at() == 5000
    assert fire(tracker, 5000) == [(5000, INST, Verdict.HEALTHY)]


def test_r8_failed_is_unhealthy_at_once() -> None:
    tracker = tracked(checks=1)
    tracker.observe(fact(FactKind.READY), 0)
    assert tracker.observe(fact(FactKind.FAILED), 300) is Verdict.UNHEALTHY
    assert tracker.verdict(INST) is Verdict.UNHEALTHY
    assert tracker.timers.next_at() is None
    # reported twice, it is still one verdict
    assert tracker.observe(fact(FactKind.FAILED), 400) is None


def test_r8_failed_after_healthy_is_a_new_unhealthy_verdict() -> None:
    tracker = tracked(min_healthy_ms=0, checks=1)
    assert up(tracker, 100, checks=1) is Verdict.HEALTHY
    assert tracker.observe(fact(FactKind.FAILED), 200) is Verdict.UNHEALTHY
    assert tracker.verdict(INST) is Verdict.UNHEALTHY
    assert not tracker.serving(INST)


def test_r8_min_healthy_zero_gives_the_verdict_at_the_fact() -> None:
    tracker = tracked(min_healthy_ms=0, checks=2)
    assert tracker.observe(fact(FactKind.READY), 100) is None
    assert tracker.observe(fact(FactKind.CHECK_PASSING, "c0"), 100) is None
    assert tracker.observe(fact(FactKind.CHECK_PASSING, "c1"), 250) is Verdict.HEALTHY
    assert tracker.timers.next_at() is None


def test_r8_check_flap_after_healthy_stops_serving_without_a_verdict() -> None:
    tracker = tracked(min_healthy_ms=0, checks=1)
    up(tracker, 0, checks=1)
    assert tracker.observe(fact(FactKind.CHECK_FAILING, "c0"), 100) is None
    assert tracker.verdict(INST) is Verdict.HEALTHY
    assert not tracker.serving(INST)
    assert tracker.observe(fact(FactKind.CHECK_PASSING, "c0"), 200) is None
    assert tracker.serving(INST)


def test_r8_next_wakeup_is_the_earliest_timer_of_all_instances() -> None:
    tracker = HealthTracker()
    assert tracker.timers.next_at() is None
    tracker.track("a", 0, 1000, 10_000, 0)
    tracker.track("b", 0, 1000, 8000, 0)
    assert tracker.timers.next_at() == 8000
    tracker.observe(fact(FactKind.READY, instance_id="a"), 3000)
    assert tracker.timers.next_at() == 4000
    tracker.observe(fact(FactKind.READY, instance_id="b"), 2500)
    assert tracker.timers.next_at() == 3500
    assert fire(tracker, 3500) == [(3500, "b", Verdict.HEALTHY)]
    assert tracker.timers.next_at() == 4000
    tracker.forget("a")
    assert tracker.timers.next_at() is None


def test_r8_pop_due_returns_verdicts_in_time_order() -> None:
    tracker = HealthTracker()
    for name, placed in (("late", 300), ("early", 100), ("mid", 200)):
        tracker.track(name, placed, 1000, 5000, 0)
        tracker.observe(fact(FactKind.READY, instance_id=name), placed)
    assert fire(tracker, 10_000) == [
        (1100, "early", Verdict.HEALTHY),
        (1200, "mid", Verdict.HEALTHY),
        (1300, "late", Verdict.HEALTHY),
    ]


def test_r8_instance_health_due_at_and_settle() -> None:
    health = InstanceHealth(min_healthy_ms=1000, deadline_ms=5000, checks=1)
    assert health.stable_since is None
    assert health.due_at() == 5000
    assert health.apply(fact(FactKind.READY), 100) is None
    assert health.apply(fact(FactKind.CHECK_PASSING, "c0"), 300) is None
    assert health.stable_since == 300
    assert health.due_at() == 1300
    assert health.settle(1299) is None
    assert health.settle(1300) is Verdict.HEALTHY
    assert health.due_at() is None
    assert health.settle(9999) is None


def test_r8_repeated_facts_keep_the_timer_heap_small() -> None:
    # 10,000 check flaps on one instance: each fact is O(1), and the heap does not keep one entry per flap
    tracker = tracked(min_healthy_ms=1000, deadline_ms=1_000_000, checks=1)
    tracker.observe(fact(FactKind.READY), 0)
    for i in range(10_000):
        tracker.observe(fact(FactKind.CHECK_PASSING, "c0"), 2 * i + 1)
        tracker.observe(fact(FactKind.CHECK_FAILING, "c0"), 2 * i + 2)
    assert tracker.timers.next_at() == 1_000_000
    assert len(tracker.timers) <= 100
    tracker.observe(fact(FactKind.CHECK_PASSING, "c0"), 30_000)
    assert tracker.timers.next_at() == 31_000
    assert len(tracker.timers) <= 100
    assert fire(tracker, 1_000_000) == [(31_000, INST, Verdict.HEALTHY)]
    assert tracker.timers.next_at() is None


def test_r8_many_instances_flapping_keep_the_heap_proportional() -> None:
    tracker = HealthTracker()
    n = 50
    for k in range(n):
        tracker.track(f"i{k}", 0, 1000, 500_000, 1)
        tracker.observe(fact(FactKind.READY, instance_id=f"i{k}"), 0)
    for t in range(1, 400):
        for k in range(n):
            kind = FactKind.CHECK_PASSING if t % 2 else FactKind.CHECK_FAILING
            tracker.observe(fact(kind, "c0", f"i{k}"), t)
    assert tracker.timers.next_at() == 1399
    assert len(tracker.timers) <= 4 * n + 100


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=400),
            st.sampled_from(
                [FactKind.READY, FactKind.CHECK_PASSING, FactKind.CHECK_FAILING, FactKind.RESTARTED, FactKind.RUNNING]
            ),
        ),
        max_size=200,
    ),
    min_healthy=st.integers(min_value=0, max_value=2000),
)
def test_r8_next_wakeup_matches_the_instance_after_any_facts(
    steps: list[tuple[int, FactKind]], min_healthy: int
) -> None:
    # the tracker's next timer is always the instance's own due time, whatever facts came before
    deadline = 50_000
    tracker = tracked(min_healthy_ms=min_healthy, deadline_ms=deadline, checks=1)
    now = 0
    for gap, kind in steps:
        now += gap
        if now >= deadline:
            break
        fire(tracker, now)
        tracker.observe(fact(kind, "c0"), now)
        health = tracker._instances[INST]
        assert tracker.timers.next_at() == health.due_at()
        assert len(tracker.timers) <= 70  # bounded, not one entry per fact


# --- through the controller ----------------------------------------------------------------------------


def healthy_world(**update: object) -> World:
    """Version 1 of three workers, all healthy (the deployment is successful)."""
    world = World()
    world.deploy(service_manifest(update=dict(update)))
    world.converge()
    assert world.record(KEY).status == "successful"
    return world


def test_r8_controller_needs_every_check_for_min_healthy_ms() -> None:
    world = World()
    record = world.deploy(service_manifest(checks=2, count=1))
    (instance_id,) = world.runtime.live
    world.report(instance_id, FactKind.READY)
    world.report(instance_id, FactKind.CHECK_PASSING, "api:0")
    world.advance(5000)
    assert world.record(KEY).counters.healthy == 0
    world.report(instance_id, FactKind.CHECK_PASSING, "api:1")
    world.advance(5999)
    assert world.record(KEY).counters.healthy == 0
    assert world.registry.lookup("api") == []
    world.advance(6000)
    record = world.record(record.deployment_id)
    assert record.counters.healthy == 1
    assert record.status == "successful"
    assert [s.instance_id for s in world.registry.lookup("api")] == [instance_id]


def test_r8_controller_agent_states_mode_ignores_checks() -> None:
    world = World()
    world.deploy(service_manifest(count=1, update={"health_check": "agent_states"}))
    (instance_id,) = world.runtime.live
    world.report(instance_id, FactKind.READY)
    world.report(instance_id, FactKind.CHECK_FAILING, "api:0")
    world.advance(1000)
    assert world.record(KEY).status == "successful"
    # serving follows readiness only in this mode
    assert [s.instance_id for s in world.registry.lookup("api")] == [instance_id]


def test_r8_controller_restart_and_failing_check_are_no_verdict() -> None:
    world = World()
    record = world.deploy(service_manifest(count=1))
    (instance_id,) = world.bring_up()
    world.advance(900)
    world.report(instance_id, FactKind.RESTARTED)
    world.advance(1500)
    world.bring_up([instance_id])  # up again at 1500
    world.advance(2000)
    world.report(instance_id, FactKind.CHECK_FAILING, "api:0")
    world.advance(2400)
    world.report(instance_id, FactKind.CHECK_PASSING, "api:0")  # the window starts over at 2400
    world.advance(3399)
    record = world.record(record.deployment_id)
    assert record.status == "running"
    assert record.counters == Counters(desired_total=1, placed=1)
    assert "deployment_instance_unhealthy" not in world.event_types(KEY)
    world.advance(3400)
    assert world.record(KEY).status == "successful"


def test_r8_controller_healthy_deadline_gives_unhealthy() -> None:
    world = World()
    update = {"healthy_deadline_ms": 5000, "progress_deadline_ms": 0}
    world.deploy(service_manifest(count=1, update=update))
    (instance_id,) = world.runtime.live
    world.report(instance_id, FactKind.READY)  # never passes its check
    world.advance(4999)
    assert world.record(KEY).status == "running"
    world.advance(5000)
    record = world.record(KEY)
    assert record.counters.unhealthy == 1
    assert record.status == "failed"
    (event,) = [e for e in world.store.deployment_events(record.deployment_id) if e.type.endswith("_unhealthy")]
    assert event.t_ms == 5000
    assert event.fields["instance_id"] == instance_id


def test_r8_controller_failed_fact_is_unhealthy_at_once() -> None:
    world = World()
    world.deploy(service_manifest(count=2))
    first, _ = world.runtime.live
    world.clock.now = 250
    world.report(first, FactKind.FAILED)
    record = world.record(KEY)
    assert record.counters.unhealthy == 1
    (event,) = [e for e in world.store.deployment_events(record.deployment_id) if e.type.endswith("_unhealthy")]
    assert event.t_ms == 250
    # the failed instance is stopped and a replacement takes its place (reschedule attempts default to 1)
    assert first in world.runtime.stopped
    assert record.counters.placed == 3


def test_r8_unhealthy_after_healthy_moves_the_counters() -> None:
    world = healthy_world()
    record = world.deploy(service_manifest("agent:2", update={"max_parallel": 1}))
    (first,) = world.bring_up()
    world.advance(world.clock.now + 1000)
    assert world.record(KEY).counters == Counters(desired_total=3, placed=2, healthy=1)
    world.report(first, FactKind.FAILED)
    record = world.record(record.deployment_id)
    # counted once healthy, now moved to unhealthy; a replacement is placed (reschedule attempts default to 1)
    assert record.counters == Counters(desired_total=3, placed=3, healthy=0, unhealthy=1)
    assert record.status == "running"
    types = world.event_types(KEY)
    assert types.count("deployment_instance_healthy") == 1
    assert types.count("deployment_instance_unhealthy") == 1
    world.converge()
    record = world.record(record.deployment_id)
    assert record.status == "successful"
    assert record.counters == Counters(desired_total=3, placed=4, healthy=3, unhealthy=1)


def test_r8_controller_min_healthy_zero_is_healthy_at_the_fact() -> None:
    world = World()
    world.clock.now = 700
    world.deploy(service_manifest(count=2, update={"min_healthy_ms": 0}))
    world.bring_up()
    record = world.record(KEY)
    assert record.status == "successful"
    healthy = [e for e in world.store.deployment_events(record.deployment_id) if e.type.endswith("_healthy")]
    assert [e.t_ms for e in healthy] == [700, 700]


def test_r8_controller_discovery_follows_check_flaps_after_healthy() -> None:
    world = healthy_world()
    serving = {s.instance_id for s in world.registry.lookup("api")}
    flapping = sorted(serving)[0]
    world.report(flapping, FactKind.CHECK_FAILING, "api:0")
    assert {s.instance_id for s in world.registry.lookup("api")} == serving - {flapping}
    assert {s.instance_id for s in world.registry.lookup("api", passing_only=False)} == serving
    world.report(flapping, FactKind.CHECK_PASSING, "api:0")
    assert {s.instance_id for s in world.registry.lookup("api")} == serving


def test_r8_controller_restart_after_healthy_hides_until_ready_again() -> None:
    world = healthy_world()
    restarted = sorted(s.instance_id for s in world.registry.lookup("api"))[0]
    record = world.record(KEY)
    world.report(restarted, FactKind.RESTARTED)
    assert restarted not in {s.instance_id for s in world.registry.lookup("api")}
    assert [v.healthy for v in world.controller.instances() if v.instance_id == restarted] == [True]
    world.bring_up([restarted])
    assert restarted in {s.instance_id for s in world.registry.lookup("api")}
    assert world.store.load_deployment(record.deployment_id) == record


def test_r8_controller_next_wakeup_after_many_flaps() -> None:
    world = World()
    world.deploy(service_manifest(count=1, update={"healthy_deadline_ms": 200_000, "progress_deadline_ms": 0}))
    (instance_id,) = world.runtime.live
    world.report(instance_id, FactKind.READY)
    for i in range(10_000):
        world.clock.now = 2 * i + 1
        world.report(instance_id, FactKind.CHECK_PASSING, "api:0")
        world.clock.now = 2 * i + 2
        world.report(instance_id, FactKind.CHECK_FAILING, "api:0")
    assert world.controller.next_wakeup() == 200_000
    world.report(instance_id, FactKind.CHECK_PASSING, "api:0")
    assert world.controller.next_wakeup() == world.clock.now + 1000
    world.advance(world.clock.now + 1000)
    assert world.record(KEY).status == "successful"


@pytest.mark.parametrize("kind", [FactKind.PLACED, FactKind.RUNNING])
def test_r8_placement_facts_alone_are_no_verdict(kind: FactKind) -> None:
    tracker = tracked(checks=0)
    assert tracker.observe(fact(kind), 0) is None
    assert tracker.timers.next_at() == 30_000
