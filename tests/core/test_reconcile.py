"""R16 (ours): a key's current service job keeps its agents running once no rollout tends them."""

from __future__ import annotations

from mn_deploy_core.ports import FactKind
from tests.scripted import World, service_manifest

KEY = "agent-api"


def lose(world: World, agent_id: str) -> str:
    """The agent's live instance fails for good (restarts used up, or its node lost); its id."""
    (instance_id,) = [i for i in world.runtime.live if world.runtime.placements[i].agent_id == agent_id]
    world.report(instance_id, FactKind.FAILED)
    return instance_id


def live_of(world: World, agent_id: str) -> list[str]:
    return [i for i in world.runtime.live if world.runtime.placements[i].agent_id == agent_id]


def test_r16_a_primary_lost_after_success_is_replaced_at_the_same_spec_in_the_same_job() -> None:
    world = World.settled(service_manifest())
    record = world.record(KEY)
    lost = lose(world, "worker-1")

    (replacement,) = live_of(world, "worker-1")
    assert replacement == f"{record.deployment_id}.worker-1.1"
    placement = world.runtime.placements[replacement]
    assert (placement.job_id, placement.deployment_version, placement.role, placement.phase) == (
        record.current_job_id,
        "1",
        "primary",
        "replacement",
    )
    assert placement.spec_digest == world.runtime.placements[lost].spec_digest
    assert lost in world.runtime.stopped
    after = world.record(KEY)
    assert (after.status, after.reschedules) == ("successful", {"worker-1": 1})
    assert world.event_types(KEY)[-2:] == ["deployment_instance_lost", "deployment_instance_placed"]
    assert "worker-1" not in {s.agent_id for s in world.registry.lookup("api")}

    world.converge()
    assert "worker-1" in {s.agent_id for s in world.registry.lookup("api")}
    events = world.store.deployment_events(record.deployment_id)
    assert [e.type for e in events[-3:]] == [
        "deployment_instance_lost",
        "deployment_instance_placed",
        "deployment_instance_healthy",
    ]
    assert events[-3].fields == {"instance_id": lost, "agent_id": "worker-1", "replacement_id": replacement}


def test_r16_with_the_reschedule_budget_spent_a_lost_agent_stays_lost_and_the_record_says_why() -> None:
    world = World.settled(service_manifest())  # one reschedule per agent by default
    lose(world, "worker-0")
    world.converge()
    lost_again = lose(world, "worker-0")

    assert live_of(world, "worker-0") == [lost_again]  # failed for good, not replaced, not stopped
    event = world.store.deployment_events(world.record(KEY).deployment_id)[-1]
    assert (event.type, event.fields["instance_id"], event.fields["reason"]) == (
        "deployment_instance_lost",
        lost_again,
        "reschedule attempts used up",
    )
    assert world.controller.next_wakeup() is None


def test_r16_a_lost_agent_of_an_old_deployment_is_replaced_during_a_rollout_which_then_updates_it() -> None:
    world = World.settled(service_manifest(count=3, update={"max_parallel": 1}))
    v2 = world.deploy(service_manifest("agent:2", count=3, update={"max_parallel": 1}))
    lost = lose(world, "worker-2")  # not rolled yet: its v1 instance is no rollout's

    (replacement,) = live_of(world, "worker-2")
    assert world.runtime.placements[replacement].deployment_version == "1"
    world.converge()
    done = world.record(v2.deployment_id)
    assert done.status == "successful"
    assert {world.runtime.placements[i].deployment_version for i in world.runtime.live} == {"2"}
    assert lost in world.runtime.stopped and replacement in world.runtime.stopped


def test_r16_a_batch_job_is_never_replaced() -> None:
    world = World()
    world.deploy(service_manifest(job_type="batch", count=2))
    world.bring_up()
    lost = lose(world, "worker-0")

    assert live_of(world, "worker-0") == [lost]
    assert "deployment_instance_lost" not in world.event_types(KEY)


def test_r16_a_replacement_is_tended_by_a_controller_that_took_over() -> None:
    world = World.settled(service_manifest(reschedule=2))
    lose(world, "worker-0")
    (replacement,) = live_of(world, "worker-0")
    assert world.restart_controller() == []
    world.bring_up([replacement])
    world.converge()
    assert "worker-0" in {s.agent_id for s in world.registry.lookup("api")}

    lose(world, "worker-0")  # the second loss: the restored budget still has one
    (second,) = live_of(world, "worker-0")
    assert second.endswith(".worker-0.2")
    assert world.record(KEY).reschedules == {"worker-0": 2}
