"""R8, R14, R3b: every instance's lifecycle is recorded where it happens, whoever owns the instance.

The store's instance records (`MemoryStore.instance_lives`, the last record of every instance ever placed) are
what a simulation reports and what a restarted controller takes over from; these tests read them after driving
the controller by hand.
"""

from __future__ import annotations

from mn_deploy_core.ports import FactKind
from mn_deploy_core.records import InstanceRecord
from tests.scripted import World, service_manifest

KEY = "agent-api"
TIMING = {"min_healthy_ms": 1000, "healthy_deadline_ms": 5000, "progress_deadline_ms": 20_000}


def life(world: World, instance_id: str) -> InstanceRecord:
    return next(r for r in world.store.instance_lives() if r.instance_id == instance_id)


def settled(count: int = 2) -> World:
    """Version 1 placed at 0 and brought up at once: healthy and discoverable from 1 s."""
    world = World.settled(service_manifest("agent:1", count=count, update=TIMING))
    assert world.clock.now == 1000
    return world


def test_r8_a_healthy_primary_records_running_healthy_and_an_open_discoverable_interval() -> None:
    world = settled()
    first = life(world, "dep_agent-api_1.worker-0.0")
    assert (first.placed_ms, first.running_ms, first.healthy_ms, first.unhealthy_ms) == (0.0, 0.0, 1000.0, None)
    assert first.discoverable_ms == ((1000.0, None),)
    assert first.outcome == "healthy"


def test_r14_an_in_place_restart_closes_the_interval_until_it_passes_again() -> None:
    world = settled()
    instance_id = "dep_agent-api_1.worker-0.0"
    world.advance(5000)
    world.report(instance_id, FactKind.EXITED)
    world.advance(6000)
    world.report(instance_id, FactKind.RESTARTED)
    world.advance(7000)
    world.report(instance_id, FactKind.RUNNING)
    world.report(instance_id, FactKind.READY)
    assert life(world, instance_id).discoverable_ms == ((1000.0, 5000.0),)  # ready, but the check not yet passing
    world.advance(7500)
    world.report(instance_id, FactKind.CHECK_PASSING, "/health/0")
    record = life(world, instance_id)
    assert (record.restart_ms, record.passing_again_ms) == ((6000.0,), (7500.0,))
    assert record.discoverable_ms == ((1000.0, 5000.0), (7500.0, None))
    assert record.outcome == "healthy"


def test_r8_a_verdict_after_the_deployment_ended_is_recorded() -> None:
    world = settled()
    assert world.record(KEY).status == "successful"
    world.advance(9000)
    world.report("dep_agent-api_1.worker-1.0", FactKind.FAILED)
    record = life(world, "dep_agent-api_1.worker-1.0")
    assert (record.healthy_ms, record.unhealthy_ms, record.failed) == (1000.0, 9000.0, True)
    assert record.discoverable_ms == ((1000.0, 9000.0),)
    assert record.outcome == "unhealthy"
    counters = world.record(KEY).counters  # the terminal record counts the loss and its replacement (R16)
    assert (counters.placed, counters.healthy, counters.unhealthy) == (3, 1, 1)


def test_r8_an_old_version_failing_during_a_rollout_is_recorded() -> None:
    world = settled(count=3)
    world.deploy(service_manifest("agent:2", count=3, update={**TIMING, "max_parallel": 1}))
    world.advance(2000)
    world.report("dep_agent-api_1.worker-2.0", FactKind.FAILED)
    record = life(world, "dep_agent-api_1.worker-2.0")
    assert record.unhealthy_ms == 2000.0 and record.outcome == "unhealthy"
    assert world.record(KEY).counters.unhealthy == 0  # not the rollout's instance


def test_r6_a_canary_is_discoverable_from_its_promotion_and_a_replaced_primary_until_its_stop() -> None:
    world = settled()
    world.deploy(service_manifest("agent:2", count=2, update={**TIMING, "strategy": "canary", "canary": 1}))
    world.converge()
    assert world.record(KEY).status == "awaiting_promotion"
    world.advance(10_000)
    world.controller.promote(KEY, now=world.clock.now)
    canary = life(world, "dep_agent-api_2.worker-0.0")
    assert (canary.role, canary.promoted_ms, canary.healthy_ms) == ("primary", 10_000.0, 2000.0)
    assert canary.discoverable_ms == ((10_000.0, None),)
    old = life(world, "dep_agent-api_1.worker-0.0")
    assert (old.stopped_ms, old.discoverable_ms, old.outcome) == (10_000.0, ((1000.0, 10_000.0),), "stopped")


def test_r3b_a_batch_instance_that_exits_0_is_completed_not_unhealthy_and_not_restarted() -> None:
    world = World()
    world.deploy(service_manifest("job:1", count=2, job_type="batch", update=TIMING))
    world.bring_up()
    world.advance(3000)
    world.report("dep_agent-api_1.worker-0.0", FactKind.COMPLETED)
    world.advance(60_000)  # far past any healthy deadline
    done = life(world, "dep_agent-api_1.worker-0.0")
    assert (done.completed_ms, done.unhealthy_ms, done.restart_ms, done.outcome) == (3000.0, None, (), "completed")
    still = life(world, "dep_agent-api_1.worker-1.0")
    assert still.unhealthy_ms is None  # a batch instance has no healthy deadline
    assert world.runtime.placements["dep_agent-api_1.worker-0.0"].batch


def test_r13_a_restarted_controller_keeps_every_lifecycle() -> None:
    world = settled()
    world.advance(4000)
    world.report("dep_agent-api_1.worker-0.0", FactKind.RESTARTED)
    before = world.store.instance_lives()
    world.restart_controller()
    assert world.store.instance_lives() == before
    world.report("dep_agent-api_1.worker-0.0", FactKind.READY)
    world.report("dep_agent-api_1.worker-0.0", FactKind.CHECK_PASSING, "/health/0")
    record = life(world, "dep_agent-api_1.worker-0.0")
    assert (record.restart_ms, record.passing_again_ms) == ((4000.0,), (4000.0,))
    assert record.discoverable_ms == ((1000.0, 4000.0), (4000.0, None))
