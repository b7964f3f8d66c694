"""R9: the progress deadline and what an unhealthy verdict does to a deployment.

Reference: SEMANTICS.md §8, reference/peers.md §2.4 (Nomad's progress deadline algorithm, which §8 follows).
"""

from __future__ import annotations

from typing import Any

import pytest

from mn_deploy_core.ports import FactKind
from mn_deploy_core.status import FAILED_DEADLINE, FAILED_UNHEALTHY
from tests.scripted import World, service_manifest

KEY = "agent-api"
PD = 60_000
HD = 25_000
TIMING = {"min_healthy_ms": 1000, "healthy_deadline_ms": HD, "progress_deadline_ms": PD}


def manifest(image: str = "agent:1", reschedule: int | None = None, **kwargs: Any) -> dict[str, Any]:
    update = {**TIMING, **kwargs.pop("update", {})}
    document = service_manifest(image, update=update, **kwargs)
    if reschedule is not None:
        document["policies"]["reschedule"] = {"attempts": reschedule}
    return document


def stable_world(**kwargs: Any) -> World:
    return World.settled(manifest(**kwargs))


def deadline(world: World, id_or_key: str = KEY) -> float | None:
    return world.record(id_or_key).require_progress_by_ms


def failed_event_time(world: World, deployment_id: str) -> float:
    (event,) = [e for e in world.store.deployment_events(deployment_id) if e.type == "deployment_failed"]
    return event.t_ms


# --- where the deadline is ------------------------------------------------------------------------------


def test_r9_deadline_set_at_first_placement() -> None:
    world = World()
    world.clock.now = 5000
    record = world.deploy(manifest())
    assert record.require_progress_by_ms == 5000 + PD


def test_r9_update_deadline_set_at_its_first_placement() -> None:
    world = stable_world()
    world.clock.now = 100_000
    record = world.deploy(manifest("agent:2", update={"max_parallel": 1}))
    assert record.require_progress_by_ms == 100_000 + PD


def test_r9_no_deadline_without_placements() -> None:
    world = stable_world()
    noop = world.deploy(manifest())
    assert noop.status == "successful"
    assert noop.require_progress_by_ms is None


def test_r9_pd_zero_sets_no_deadline() -> None:
    world = World()
    record = world.deploy(manifest(update={"progress_deadline_ms": 0}))
    assert record.require_progress_by_ms is None
    assert world.controller.next_wakeup() == HD  # only the health timers remain


def test_r9_deadline_extended_per_newly_healthy_instance() -> None:
    world = World()
    record = world.deploy(manifest())
    first, second, third = world.runtime.live
    assert deadline(world) == PD
    world.advance(10_000)
    world.bring_up([first])
    world.advance(11_000)
    assert deadline(world) == 11_000 + PD
    world.advance(20_000)
    world.bring_up([second])
    world.advance(21_000)
    assert deadline(world) == 21_000 + PD
    assert world.record(record.deployment_id).status == "running"
    world.bring_up([third])
    world.advance(22_000)
    assert world.record(record.deployment_id).status == "successful"


def test_r9_slow_but_steady_progress_never_hits_the_deadline() -> None:
    # each instance takes most of PD to come up, but each healthy one moves the deadline on
    world = stable_world()
    record = world.deploy(manifest("agent:2", update={"max_parallel": 1, "healthy_deadline_ms": 55_000}))
    for _ in range(3):
        (placed,) = world.fresh()
        world.advance(world.clock.now + 50_000)
        world.bring_up([placed])
        world.advance(world.clock.now + 1000)
    assert world.clock.now - record.require_progress_by_ms > PD  # the whole rollout took longer than PD
    assert world.record(record.deployment_id).status == "successful"


def test_r9_unhealthy_verdict_never_extends_the_deadline() -> None:
    world = World()
    world.deploy(manifest(count=1))
    world.advance(HD)  # unhealthy by the healthy deadline; a replacement is placed
    record = world.record(KEY)
    assert record.counters.unhealthy == 1
    assert record.require_progress_by_ms == PD


def test_r9_deadline_never_moves_earlier() -> None:
    # a driver may tick late: a verdict that fell at 1000 is processed after a pause at 5000 set now + PD
    world = World()
    world.deploy(manifest(count=2))
    world.bring_up(world.runtime.live[:1])
    world.clock.now = 5000
    world.controller.pause(KEY, now=world.clock.now)
    assert deadline(world) == 5000 + PD
    world.controller.tick(5000)
    record = world.record(KEY)
    assert record.counters.healthy == 1
    healthy = [e for e in world.store.deployment_events(record.deployment_id) if e.type.endswith("_healthy")]
    assert [e.t_ms for e in healthy] == [1000]
    assert record.require_progress_by_ms == 5000 + PD


def test_r9_pause_resume_and_promote_set_now_plus_pd() -> None:
    world = stable_world()
    world.deploy(manifest("agent:2", update={"strategy": "canary", "canary": 1}))
    world.advance(2000)
    world.controller.pause(KEY, now=world.clock.now)
    assert deadline(world) == 2000 + PD
    world.bring_up()
    world.advance(40_000)
    world.controller.resume(KEY, now=world.clock.now)
    assert deadline(world) == 40_000 + PD
    world.advance(50_000)
    assert world.record(KEY).status == "awaiting_promotion"
    world.controller.promote(KEY, now=world.clock.now)
    assert deadline(world) == 50_000 + PD


def test_r9_pause_and_resume_with_pd_zero_set_no_deadline() -> None:
    world = World()
    world.deploy(manifest(update={"progress_deadline_ms": 0}))
    world.controller.pause(KEY, now=world.clock.now)
    world.controller.resume(KEY, now=world.clock.now)
    assert deadline(world) is None


# --- when it is enforced ----------------------------------------------------------------------------------


def test_r9_deadline_fails_a_deployment_that_is_not_done() -> None:
    world = World()
    # never healthy: unhealthy at 25 s and 50 s, replaced each time, then the deadline at 60 s
    record = world.deploy(manifest(count=1, reschedule=10))
    assert world.controller.next_wakeup() == HD
    world.advance(PD - 1)
    assert world.record(KEY).status == "running"
    assert world.controller.next_wakeup() == PD
    world.advance(PD)
    record = world.record(record.deployment_id)
    assert record.status == "failed"
    assert record.description == FAILED_DEADLINE
    assert record.counters.unhealthy == 2
    assert failed_event_time(world, record.deployment_id) == PD
    assert world.event_types(KEY)[-1] == "deployment_failed"


def test_r9_deadline_applies_to_canaries_not_yet_healthy() -> None:
    world = stable_world()
    record = world.deploy(manifest("agent:2", reschedule=10, update={"strategy": "canary", "canary": 1}))
    world.advance(world.clock.now + PD)
    record = world.record(record.deployment_id)
    assert record.status == "failed"
    assert record.description == FAILED_DEADLINE
    # the unpromoted canary is stopped; the old version serves on
    assert all(v.version == "1" for v in world.controller.instances(KEY))


def test_r9_pause_suspends_deadline() -> None:
    world = World()
    record = world.deploy(manifest(count=1, reschedule=10))
    world.advance(10_000)
    world.controller.pause(KEY, now=world.clock.now)
    world.advance(10 * PD)
    paused = world.record(record.deployment_id)
    assert paused.status == "paused"
    assert "deployment_failed" not in world.event_types(KEY)
    # health tracking went on while paused: the instance was judged unhealthy (and not replaced yet)
    assert paused.counters.unhealthy == 1
    assert paused.counters.placed == 1
    resumed_at = world.clock.now
    world.controller.resume(KEY, now=world.clock.now)
    assert deadline(world) == resumed_at + PD
    assert world.record(KEY).counters.placed == 2
    world.advance(resumed_at + PD)
    record = world.record(record.deployment_id)
    assert record.status == "failed"
    assert record.description == FAILED_DEADLINE
    assert failed_event_time(world, record.deployment_id) == resumed_at + PD


def test_r9_pause_from_awaiting_promotion_suspends_deadline_after_resume_too() -> None:
    world = stable_world()
    world.deploy(manifest("agent:2", update={"strategy": "canary", "canary": 1}))
    world.converge()
    world.controller.pause(KEY, now=world.clock.now)
    world.advance(world.clock.now + 3 * PD)
    world.controller.resume(KEY, now=world.clock.now)
    world.advance(world.clock.now + 3 * PD)
    assert world.record(KEY).status == "awaiting_promotion"


def test_r9_deadline_not_enforced_while_healthy_canaries_await_promotion() -> None:
    world = stable_world()
    record = world.deploy(manifest("agent:2", update={"strategy": "canary", "canary": 1}))
    world.converge()
    assert world.record(KEY).status == "awaiting_promotion"
    assert world.controller.next_wakeup() is None
    world.advance(world.clock.now + 10 * PD)
    assert world.record(record.deployment_id).status == "awaiting_promotion"
    promoted_at = world.clock.now
    world.controller.promote(KEY, now=world.clock.now)
    assert deadline(world) == promoted_at + PD
    world.converge()
    assert world.record(record.deployment_id).status == "successful"


def test_r9_a_canary_failing_after_a_long_wait_for_promotion_restarts_the_deadline() -> None:
    world = stable_world()
    record = world.deploy(manifest("agent:2", update={"strategy": "canary", "canary": 1}))
    world.converge()
    world.advance(world.clock.now + 10 * PD)
    (canary,) = [i.instance_id for i in world.instances_of(record.deployment_id)]
    world.report(canary, FactKind.FAILED)
    assert world.record(KEY).status == "running"
    assert deadline(world) == world.clock.now + PD
    world.converge()
    assert world.record(record.deployment_id).status == "awaiting_promotion"


def test_r9_deadline_not_enforced_while_healthy_candidates_await_promotion() -> None:
    world = stable_world()
    extra = [{"node_id": "sidecar", "agent_type": "executor"}]
    record = world.deploy(manifest("agent:2", extra_nodes=extra, update={"canary": 1}))
    assert record.mode == "blue_green"
    world.converge()
    assert world.record(KEY).status == "awaiting_promotion"
    world.advance(world.clock.now + 10 * PD)
    assert world.record(record.deployment_id).status == "awaiting_promotion"
    world.controller.promote(KEY, now=world.clock.now)
    assert world.record(record.deployment_id).status == "successful"


def test_r9_deadline_at_the_same_ms_as_a_healthy_verdict_is_beaten_by_it() -> None:
    world = World()
    record = world.deploy(manifest(count=1, reschedule=5))
    world.clock.now = 1000
    world.report(world.runtime.live[0], FactKind.FAILED)
    world.clock.now = 36_000
    world.report(world.runtime.live[0], FactKind.FAILED)
    (last,) = world.runtime.live  # placed at 36 s: its healthy deadline is after the progress deadline
    world.advance(PD - 1000)
    world.bring_up([last])  # healthy at exactly PD, the deadline
    assert world.controller.next_wakeup() == PD
    world.advance(PD)
    record = world.record(record.deployment_id)
    assert record.status == "successful"
    assert record.require_progress_by_ms == 2 * PD


# --- unhealthy verdicts ------------------------------------------------------------------------------------


def test_r9_unhealthy_with_pd_zero_fails_at_once() -> None:
    world = World()
    record = world.deploy(manifest(reschedule=5, update={"progress_deadline_ms": 0}))
    first = world.runtime.live[0]
    world.clock.now = 300
    world.report(first, FactKind.FAILED)
    record = world.record(record.deployment_id)
    assert record.status == "failed"
    assert record.description == FAILED_UNHEALTHY
    assert failed_event_time(world, record.deployment_id) == 300
    assert record.counters.placed == 3  # no replacement


def test_r9_unhealthy_with_reschedule_left_places_a_replacement() -> None:
    world = stable_world()
    record = world.deploy(manifest("agent:2", update={"max_parallel": 2}))
    first, second = world.fresh()
    world.report(first, FactKind.FAILED)
    record = world.record(record.deployment_id)
    assert record.status == "running"
    assert first in world.runtime.stopped
    assert second in world.runtime.live
    replacement = f"{record.deployment_id}.worker-0.1"
    assert replacement in world.runtime.live
    assert world.runtime.placements[replacement].agent_id == "worker-0"
    assert sorted(world.in_flight(record.deployment_id)) == ["worker-0", "worker-1"]
    world.converge()
    assert world.record(record.deployment_id).status == "successful"


def test_r9_reschedule_attempts_are_counted_per_agent() -> None:
    world = World()
    record = world.deploy(manifest())
    for instance_id in list(world.runtime.live):
        world.report(instance_id, FactKind.FAILED)
    assert world.record(record.deployment_id).status == "running"
    world.converge()
    assert world.record(record.deployment_id).status == "successful"


def test_r9_unhealthy_with_no_reschedule_left_fails() -> None:
    world = stable_world()
    record = world.deploy(manifest("agent:2"))
    (first,) = world.fresh()
    world.report(first, FactKind.FAILED)
    (replacement,) = world.fresh()
    assert world.record(record.deployment_id).status == "running"
    world.report(replacement, FactKind.FAILED)
    record = world.record(record.deployment_id)
    assert record.status == "failed"
    assert record.description == FAILED_UNHEALTHY
    assert record.counters.unhealthy == 2
    assert record.counters.placed == 2  # nothing more was placed
    assert len(world.instances_of(record.deployment_id)) == 1


@pytest.mark.parametrize("how", ["failed", "healthy_deadline"])
def test_r9_unhealthy_with_reschedule_zero_fails_at_once(how: str) -> None:
    world = World()
    record = world.deploy(manifest(count=2, reschedule=0))
    first = world.runtime.live[0]
    if how == "failed":
        world.report(first, FactKind.FAILED)
    else:
        world.bring_up(world.runtime.live[1:])
        world.advance(HD)
    record = world.record(record.deployment_id)
    assert record.status == "failed"
    assert record.description == FAILED_UNHEALTHY
    assert record.counters.placed == 2


def test_r9_unhealthy_while_paused_is_replaced_on_resume() -> None:
    world = World()
    record = world.deploy(manifest(count=2))
    first, second = world.runtime.live
    world.controller.pause(KEY, now=world.clock.now)
    world.report(first, FactKind.FAILED)
    assert world.record(record.deployment_id).status == "paused"
    assert world.fresh() == [second]  # no replacement while paused
    world.controller.resume(KEY, now=world.clock.now)
    assert len(world.fresh()) == 2
    world.converge()
    assert world.record(record.deployment_id).status == "successful"
