"""A restarted controller takes over from the store: no duplicate instance, no reused version, stored deadlines."""

from __future__ import annotations

from mn_deploy_core.ports import FactKind
from tests.scripted import World, service_manifest


def _rolling_world(**update: int) -> World:
    world = World()
    world.deploy(service_manifest("agent:1"))
    world.converge()
    world.clock.now = 10_000
    world.deploy(service_manifest("agent:2", update={"max_parallel": 1, **update}))
    return world


def test_restore_rolling_goes_on_without_duplicate_instances() -> None:
    world = _rolling_world()
    world.bring_up()
    world.advance(world.clock.now + 1000)  # worker-0 healthy, worker-1 placed
    placed_before = list(world.runtime.order)
    in_flight = world.fresh()
    assert len(in_flight) == 1

    world.restart_controller()

    assert world.runtime.order == placed_before, "taking over placed nothing new"
    world.converge()
    record = world.record("agent-api")
    assert record.status == "successful"
    new_instances = [i for i in world.runtime.order if i.startswith(record.deployment_id)]
    assert len(new_instances) == 3
    assert sorted(v.agent_id for v in world.controller.instances("agent-api")) == ["worker-0", "worker-1", "worker-2"]


def test_restore_never_reuses_a_version() -> None:
    world = _rolling_world()
    world.restart_controller()
    world.converge()
    world.clock.now += 1000
    record = world.deploy(service_manifest("agent:3"))
    assert record.target_version == "3"
    assert [v.version for v in world.controller.versions("agent-api")] == ["1", "2", "3"]


def test_restore_keeps_awaiting_promotion_and_promote_works() -> None:
    world = World()
    world.deploy(service_manifest("agent:1"))
    world.converge()
    world.deploy(service_manifest("agent:2", update={"strategy": "canary", "canary": 1}))
    world.converge()
    assert world.record("agent-api").status == "awaiting_promotion"

    world.restart_controller()

    assert world.record("agent-api").status == "awaiting_promotion"
    world.controller.promote("agent-api", now=world.clock.now)
    world.converge()
    assert world.record("agent-api").status == "successful"
    assert {v.version for v in world.controller.instances("agent-api")} == {"2"}


def test_restore_keeps_a_pause_and_resume_restores() -> None:
    world = _rolling_world()
    world.controller.pause("agent-api", now=world.clock.now)
    world.restart_controller()
    assert world.record("agent-api").status == "paused"
    world.controller.resume("agent-api", now=world.clock.now)
    world.converge()
    assert world.record("agent-api").status == "successful"


def test_restore_enforces_the_stored_progress_deadline() -> None:
    # worker-0 turns unhealthy at 25 s and is replaced; the deadline stored at placement (30 s) then fails it
    world = _rolling_world(healthy_deadline_ms=15_000, progress_deadline_ms=20_000)
    deadline = world.record("agent-api").require_progress_by_ms
    assert deadline is not None
    world.restart_controller()
    world.advance(deadline)
    record = world.record("agent-api")
    assert record.status == "failed"
    assert record.description == "Failed due to progress deadline"
    failed = next(e for e in world.store.deployment_events(record.deployment_id) if e.type == "deployment_failed")
    assert failed.t_ms == deadline


def test_restore_blue_green_candidates_then_promotion_stops_the_old_job() -> None:
    world = World()
    world.deploy(service_manifest("agent:1", count=2))
    world.converge()
    old = set(world.runtime.live)
    world.deploy(service_manifest("agent:2", count=3))
    candidates = world.fresh()
    assert len(candidates) == 3

    world.restart_controller()
    world.converge()

    record = world.record("agent-api")
    assert record.status == "successful"
    assert old <= set(world.runtime.stopped)
    assert set(world.runtime.live) == set(candidates)


def test_restore_healthy_instances_stay_discoverable_until_a_fact_says_otherwise() -> None:
    world = World()
    world.deploy(service_manifest("agent:1"))
    world.converge()
    world.restart_controller()
    assert len(world.registry.lookup("api")) == 3
    first = world.runtime.live[0]
    world.report(first, FactKind.CHECK_FAILING, world.runtime.placements[first].checks[0])
    assert len(world.registry.lookup("api")) == 2


def test_restore_an_instance_failing_its_checks_stays_hidden_then_returns_when_it_passes() -> None:
    world = World()
    world.deploy(service_manifest("agent:1"))
    world.converge()
    first = world.runtime.live[0]
    check = world.runtime.placements[first].checks[0]
    world.report(first, FactKind.CHECK_FAILING, check)
    world.restart_controller()
    assert first not in {s.instance_id for s in world.registry.lookup("api")}
    world.report(first, FactKind.READY)
    world.report(first, FactKind.CHECK_PASSING, check)
    assert first in {s.instance_id for s in world.registry.lookup("api")}


def test_restore_a_replacement_pending_during_a_pause_gets_a_new_instance_id() -> None:
    world = World()
    world.deploy(service_manifest("agent:1", count=2))
    world.converge()
    record = world.deploy(service_manifest("agent:2", count=2, update={"strategy": "canary", "canary": 1}))
    world.controller.pause("agent-api", now=world.clock.now)
    (canary,) = world.fresh()
    world.report(canary, FactKind.FAILED)
    world.restart_controller()
    world.controller.resume("agent-api", now=world.clock.now)
    (replacement,) = world.fresh()
    assert replacement != canary
    assert replacement.startswith(f"{record.deployment_id}.")
    assert world.record("agent-api").reschedules == {"worker-0": 1}
