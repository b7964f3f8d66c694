"""`plan_deploy`: the core's own decision on a copy of a key's state, for every route, and nothing of it kept.

Each test plans a deploy against a memory world, then makes that very deploy in the world: the plan must have
named the deployment, version, route, agents and placements the real deploy then produced.
"""

from __future__ import annotations

from typing import Any

import pytest

from backends.memory import MemoryStore
from backends.planning import IDEMPOTENT, KeyState, Plan, plan_deploy
from mn_deploy_core.errors import DeploymentError
from mn_deploy_core.records import DeploymentRecord
from tests.scripted import World, service_manifest

KEY = "agent-api"


def planned(world: World, manifest: dict[str, Any], **deploy: Any) -> Plan:
    """The plan of `manifest` now, checked against the deploy the world then makes of it; the world's store is
    the same after planning as before."""
    before = _stored(world.store)
    plan = plan_deploy(
        KeyState.of_store(world.store, KEY),
        manifest,
        deploy.get("overrides"),
        deploy.get("key"),
        deploy.get("bundle"),
        now=world.clock.now,
    )
    assert _stored(world.store) == before
    placed_before = len(world.runtime.order)
    record = world.deploy(manifest, **deploy)
    assert _decided(plan.record) == _decided(record)
    placed = [world.runtime.placements[i] for i in world.runtime.order[placed_before:]]
    assert [(p.instance_id, p.agent_id, p.role.value, p.phase) for p in placed] == [
        (p.instance_id, p.agent_id, p.role, p.phase) for p in plan.placed
    ]
    return plan


def _decided(record: DeploymentRecord) -> dict[str, Any]:
    """A record as decided; its revision counts the copy's saves, not the store's."""
    return {**record.to_json(), "revision": None}


def _stored(store: MemoryStore) -> tuple[Any, ...]:
    records = [r.to_json() for r in store.list_deployments()]
    events = [[e.to_json() for e in store.deployment_events(r["deployment_id"])] for r in records]
    versions = [v.to_json() for v in store.list_versions(KEY)]
    return records, events, versions, [i.to_json() for i in store.list_instances()]


def batches(plan: Plan) -> list[tuple[str, list[list[str]]]]:
    return [(step.role, [list(b) for b in step.batches]) for step in plan.steps]


def test_a_new_key_plans_the_initial_route_every_agent_at_once() -> None:
    plan = planned(World(), service_manifest(count=3))
    assert (plan.route, plan.record.deployment_id, plan.record.target_version) == ("initial", "dep_agent-api_1", "1")
    assert batches(plan) == [("primary", [["worker-0", "worker-1", "worker-2"]])]
    assert plan.cancels is None and plan.creates


def test_the_running_specification_again_plans_a_noop_that_places_nothing() -> None:
    world = World.settled(service_manifest(count=3))
    plan = planned(world, service_manifest(count=3))
    assert (plan.route, plan.record.target_version) == ("noop", "2")
    assert (plan.placed, plan.steps, tuple(plan.record.changed_agent_ids)) == ((), (), ())


def test_a_batch_job_update_plans_a_rerun_of_every_agent() -> None:
    world = World.settled(service_manifest(job_type="batch", count=2))
    plan = planned(world, service_manifest("agent:2", job_type="batch", count=2))
    assert (plan.route, plan.record.deployment_id) == ("rerun", "dep_agent-api_2")
    assert batches(plan) == [("primary", [["worker-0", "worker-1"]])]


def test_rolling_plans_the_changed_agents_max_parallel_at_a_time_in_placement_order() -> None:
    world = World.settled(service_manifest(count=5))
    plan = planned(world, service_manifest("agent:2", count=5), overrides={"max_parallel": 2})
    assert (plan.route, plan.record.mode, plan.record.target_version) == ("rolling", "agent_level", "2")
    assert list(plan.record.changed_agent_ids) == [f"worker-{i}" for i in range(5)]
    assert batches(plan) == [("primary", [["worker-0", "worker-1"], ["worker-2", "worker-3"], ["worker-4"]])]
    assert [p.agent_id for p in plan.placed] == list(plan.steps[0].batches[0])
    assert plan.record.policy["max_parallel"] == 2  # the policy in force names the override


def test_only_changed_agents_are_planned() -> None:
    extra = {"node_id": "cache", "agent_type": "executor", "config": {"image": "cache:1"}}
    world = World.settled(service_manifest(count=2, extra_nodes=[extra]))
    changed = {**extra, "config": {"image": "cache:2"}}
    plan = planned(world, service_manifest(count=2, extra_nodes=[changed]))
    assert (plan.route, list(plan.record.changed_agent_ids)) == ("rolling", ["cache"])


def test_canary_plans_the_canaries_named_then_the_rest_after_a_promote() -> None:
    world = World.settled(service_manifest(count=4))
    update = {"strategy": "canary", "canary": 2, "max_parallel": 1}
    plan = planned(world, service_manifest("agent:2", count=4, update=update))
    assert (plan.route, list(plan.record.canary_agent_ids)) == ("canary", ["worker-0", "worker-1"])
    assert batches(plan) == [("canary", [["worker-0", "worker-1"]]), ("primary", [["worker-2"], ["worker-3"]])]
    assert plan.steps[0].then == "promote"
    assert [(p.agent_id, p.role) for p in plan.placed] == [("worker-0", "canary"), ("worker-1", "canary")]


def test_a_topology_change_plans_blue_green_a_whole_new_job() -> None:
    world = World.settled(service_manifest(count=2))
    extra = {"node_id": "cache", "agent_type": "executor", "config": {"image": "cache:1"}}
    plan = planned(world, service_manifest(count=2, extra_nodes=[extra]))
    assert (plan.route, plan.record.mode) == ("blue-green", "blue_green")
    assert batches(plan) == [("candidate", [["cache", "worker-0", "worker-1"]])]


def test_progressive_plans_each_step_with_its_share_and_how_it_goes_on() -> None:
    world = World.settled(service_manifest(count=4))
    steps = [{"canary": 1, "pause_ms": 500}, {"percent": 50}, {"percent": 100}]
    update = {"strategy": "progressive", "steps": steps, "max_parallel": 1}
    plan = planned(world, service_manifest("agent:2", count=4, update=update))
    assert plan.route == "progressive"
    assert batches(plan) == [
        ("canary", [["worker-0"]]),
        ("primary", [["worker-1"]]),
        ("primary", [["worker-2"], ["worker-3"]]),
    ]
    assert [(s.then, s.pause_ms) for s in plan.steps] == [("pause", 500), ("promote", 0), ("at once", 0)]


def test_the_version_already_rolling_out_plans_the_idempotent_return_creating_nothing() -> None:
    world = World.settled(service_manifest(count=3))
    rolling = world.deploy(service_manifest("agent:2", count=3))
    plan = planned(world, service_manifest("agent:2", count=3))
    assert (plan.route, plan.creates, plan.record.deployment_id) == (IDEMPOTENT, False, rolling.deployment_id)
    assert (plan.placed, plan.steps, plan.cancels) == ((), (), None)


def test_a_new_version_while_another_rolls_out_plans_its_cancelling() -> None:
    world = World.settled(service_manifest(count=3))
    rolling = world.deploy(service_manifest("agent:2", count=3))
    plan = planned(world, service_manifest("agent:3", count=3))
    assert (plan.cancels, plan.record.target_version) == (rolling.deployment_id, "3")


def test_allocation_goes_above_the_last_numbers_the_store_handed_out() -> None:
    """Redis keeps counters above what retention left: the plan names what the store would allocate."""
    world = World.settled(service_manifest(count=1))
    state = KeyState.of_store(world.store, KEY)
    state = KeyState(state.key, state.deployments, state.versions, state.instances, last_number=7, last_version=4)
    plan = plan_deploy(state, service_manifest("agent:2", count=1), None, None, None, now=world.clock.now)
    assert (plan.record.deployment_id, plan.record.target_version) == ("dep_agent-api_8", "5")


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"strategy": "canary", "auto_promote": True}, "auto_promote requires canary > 0"),
        ({"strategy": "progressive"}, "policies.update.steps is required"),
    ],
)
def test_a_deploy_the_core_refuses_is_refused_with_its_message(update: dict[str, Any], message: str) -> None:
    world = World.settled(service_manifest(count=2))
    before = _stored(world.store)
    with pytest.raises(DeploymentError) as refused:
        plan_deploy(
            KeyState.of_store(world.store, KEY),
            service_manifest("agent:2", count=2, update=update),
            None,
            None,
            None,
            now=world.clock.now,
        )
    assert message in refused.value.message
    assert _stored(world.store) == before
