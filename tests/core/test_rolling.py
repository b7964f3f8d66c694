"""R5: agent-level rolling updates: order, destructive replacement, the max_parallel budget, completion.

Reference: SEMANTICS.md §4, reference/mirrorneuron-deployments.md §18 scenario 19.
"""

from __future__ import annotations

from typing import Any

import pytest

from mn_deploy_core.ports import FactKind
from tests.scripted import World, service_manifest

KEY = "agent-api"


def stable_world(**kwargs: Any) -> World:
    return World.settled(service_manifest(**kwargs))


def placed_agents(world: World, deployment_id: str) -> list[str]:
    """Agent ids in the order the deployment placed them (replacements included)."""
    placements = world.runtime.placements
    return [placements[i].agent_id for i in world.runtime.order if placements[i].deployment_id == deployment_id]


def old_instance(world: World, agent_id: str, deployment_id: str) -> str:
    (instance_id,) = [
        i
        for i, p in world.runtime.placements.items()
        if p.agent_id == agent_id and p.deployment_id == deployment_id and i.endswith(".0")
    ]
    return instance_id


def test_r5_rolling_replaces_in_runtime_id_order() -> None:
    world = stable_world(count=12)

    record = world.deploy(service_manifest("agent:2", count=12, update={"max_parallel": 1}))
    world.converge()

    order = placed_agents(world, record.deployment_id)
    assert order == [f"worker-{i}" for i in range(12)]
    assert order.index("worker-2") < order.index("worker-10")
    assert record.changed_agent_ids == tuple(order)


def test_r5_rolling_is_destructive() -> None:
    world = stable_world(count=4)
    first = world.record(KEY).deployment_id

    record = world.deploy(service_manifest("agent:2", count=4, update={"max_parallel": 2}))

    for _ in range(100):
        for view in world.instances_of(record.deployment_id):
            # the old instance of every agent the new deployment placed is already stopped
            assert old_instance(world, view.agent_id, first) in world.runtime.stopped
        live_agents = [world.runtime.placements[i].agent_id for i in world.runtime.live]
        assert sorted(live_agents) == [f"worker-{i}" for i in range(4)]  # one primary per agent, never two
        if world.record(KEY).status != "running":
            break
        world.bring_up()
        world.advance(world.controller.next_wakeup() or world.clock.now)
    assert world.record(KEY).status == "successful"


@pytest.mark.parametrize("max_parallel", [1, 2, 3, 5])
def test_r5_rolling_never_exceeds_max_parallel(max_parallel: int) -> None:
    world = stable_world(count=7)

    record = world.deploy(service_manifest("agent:2", count=7, update={"max_parallel": max_parallel}))
    seen: list[int] = []

    # bring up one instance per step so verdicts fall at different times
    for _ in range(1000):
        in_flight = world.in_flight(record.deployment_id)
        seen.append(len(in_flight))
        assert len(in_flight) <= max_parallel
        if world.record(KEY).status != "running":
            break
        fresh = world.fresh()
        if fresh:
            world.bring_up(fresh[:1])
            world.advance(world.clock.now + 250)
        else:
            world.advance(world.controller.next_wakeup() or world.clock.now)
    assert world.record(KEY).status == "successful"
    assert max(seen) == min(max_parallel, 7)  # the budget is used, not just respected


def test_r5_budget_is_max_parallel_minus_in_flight() -> None:
    world = stable_world(count=5)

    record = world.deploy(service_manifest("agent:2", count=5, update={"max_parallel": 2}))
    assert world.in_flight(record.deployment_id) == ["worker-0", "worker-1"]

    world.bring_up(world.fresh()[:1])  # only worker-0 gets healthy
    world.advance(world.clock.now + 1000)
    assert world.in_flight(record.deployment_id) == ["worker-1", "worker-2"]
    assert list(world.record(KEY).remaining_agent_ids) == ["worker-3", "worker-4"]


def test_r5_max_parallel_zero_means_no_limit() -> None:
    # Nomad's reading of 0 (peers.md §1): everything at once, rather than a rollout that can never start
    world = stable_world(count=5)

    record = world.deploy(service_manifest("agent:2", count=5, update={"max_parallel": 0}))

    assert world.in_flight(record.deployment_id) == [f"worker-{i}" for i in range(5)]
    world.converge()
    assert world.record(KEY).status == "successful"


def test_r5_unhealthy_replacement_is_placed_at_once_and_counts_as_in_flight() -> None:
    world = stable_world(count=4)

    record = world.deploy(service_manifest("agent:2", count=4, update={"max_parallel": 2}))
    worker_0 = f"{record.deployment_id}.worker-0.0"
    world.report(worker_0, FactKind.FAILED)

    assert world.record(KEY).status == "running"
    assert worker_0 in world.runtime.stopped
    assert world.runtime.order[-1] == f"{record.deployment_id}.worker-0.1"
    assert sorted(world.in_flight(record.deployment_id)) == ["worker-0", "worker-1"]
    assert placed_agents(world, record.deployment_id) == ["worker-0", "worker-1", "worker-0"]
    counters = world.record(KEY).counters
    assert (counters.placed, counters.unhealthy) == (3, 1)

    world.converge()
    assert world.record(KEY).status == "successful"


def test_r5_replacement_for_an_instance_unhealthy_after_healthy_is_placed_at_once() -> None:
    world = stable_world(count=3)

    record = world.deploy(service_manifest("agent:2", update={"max_parallel": 1}))
    world.bring_up()
    world.advance(world.clock.now + 1000)  # worker-0 healthy, worker-1 placed
    assert world.in_flight(record.deployment_id) == ["worker-1"]

    world.report(f"{record.deployment_id}.worker-0.0", FactKind.FAILED)

    assert world.runtime.order[-1] == f"{record.deployment_id}.worker-0.1"
    assert sorted(world.in_flight(record.deployment_id)) == ["worker-0", "worker-1"]
    assert list(world.record(KEY).remaining_agent_ids) == ["worker-2"]  # the replacement uses the budget

    world.bring_up()
    world.advance(world.clock.now + 1000)
    assert world.in_flight(record.deployment_id) == ["worker-2"]
    world.converge()
    assert world.record(KEY).status == "successful"


def test_r5_done_makes_the_version_stable_and_successful() -> None:
    world = stable_world(count=3)

    record = world.deploy(service_manifest("agent:2", update={"max_parallel": 2}))
    world.converge()

    done = world.record(record.deployment_id)
    assert done.status == "successful"
    assert done.description == "Deployment completed successfully"
    assert done.current_version == done.stable_version == "2"
    assert world.store.load_version(KEY, "2").stable
    assert done.remaining_agent_ids == ()
    counters = done.counters.to_json()
    assert counters == {"desired_total": 3, "desired_canaries": 0, "placed": 3, "healthy": 3, "unhealthy": 0}
    assert {v.version for v in world.controller.instances(KEY)} == {"2"}


def test_r5_scenario_19_three_changed_agents_max_parallel_2() -> None:
    # 3 changed agents, max_parallel 2 -> batches [2] and [1]; successful; new id; events started then successful
    world = stable_world(count=3)
    first = world.record(KEY)

    record = world.deploy(service_manifest("agent:2", update={"max_parallel": 2}))
    batches = [placed_agents(world, record.deployment_id)]
    world.bring_up()
    world.advance(world.clock.now + 1000)
    batches.append(placed_agents(world, record.deployment_id)[len(batches[0]) :])
    world.converge()

    assert batches == [["worker-0", "worker-1"], ["worker-2"]]
    done = world.record(KEY)
    assert done.status == "successful"
    assert done.deployment_id != first.deployment_id
    lifecycle = [t for t in world.event_types(KEY) if "instance" not in t]
    assert lifecycle == ["deployment_started", "deployment_successful"]
