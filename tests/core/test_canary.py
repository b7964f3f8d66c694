"""R6: agent-level canaries beside the old instances, hidden until promoted; promotion and its refusals.

Reference: SEMANTICS.md §5, reference/mirrorneuron-deployments.md §18 scenarios 20-23.
"""

from __future__ import annotations

from typing import Any

import pytest

from mn_deploy_core.errors import RefusedError
from tests.scripted import World, service_manifest

KEY = "agent-api"
CANARY = {"strategy": "canary", "canary": 1}


def canary_world(**update: Any) -> tuple[World, list[str], str]:
    """v1 stable (3 workers), then v2 deployed with `update`; returns the world, v1 instance ids, v2's id."""
    world = World()
    world.deploy(service_manifest())
    world.converge()
    v1 = list(world.runtime.live)
    record = world.deploy(service_manifest("agent:2", update={**CANARY, **update}))
    return world, v1, record.deployment_id


def api(world: World, **options: Any) -> list[tuple[str, str, str]]:
    """(agent, version, role) of every `api` service a lookup with `options` returns."""
    found = world.registry.lookup("api", **options)
    return sorted((s.agent_id, s.deployment_version, s.deployment_role) for s in found)


V1_SERVING = [("worker-0", "1", "primary"), ("worker-1", "1", "primary"), ("worker-2", "1", "primary")]


def test_r6_canaries_are_placed_beside_old_instances_with_role_canary() -> None:
    world, v1, dep = canary_world(canary=2)

    assert set(v1) <= set(world.runtime.live)
    assert world.runtime.stopped == []
    canaries = world.instances_of(dep)
    assert [(c.agent_id, c.role) for c in canaries] == [("worker-0", "canary"), ("worker-1", "canary")]
    assert {world.runtime.placements[c.instance_id].phase for c in canaries} == {"canary"}
    assert world.record(KEY).description == "Deployment is running"


def test_r6_canaries_are_hidden_from_discovery_and_old_instances_keep_serving() -> None:
    world, _, _ = canary_world()
    world.converge()  # the canary is healthy and passing

    assert api(world) == V1_SERVING
    assert api(world, include_candidates=True) == [*V1_SERVING[:1], ("worker-0", "2", "canary"), *V1_SERVING[1:]]
    assert api(world, role="canary") == [("worker-0", "2", "canary")]


def test_r6_all_canaries_healthy_awaits_manual_promotion() -> None:
    # scenario 20: awaiting_promotion; 1 canary and 2 remaining; canary services hidden; current_version still old
    world, v1, dep = canary_world()
    world.converge()

    record = world.record(KEY)
    assert record.deployment_id == dep
    assert record.status == "awaiting_promotion"
    assert record.description == "Deployment is running but requires manual promotion"
    assert record.canary_agent_ids == ("worker-0",)
    assert list(record.remaining_agent_ids) == ["worker-1", "worker-2"]
    assert record.current_version == "1"
    assert record.current_job_id == record.stable_job_id
    assert world.event_types(dep)[-1] == "deployment_canary_ready"
    ready = world.store.deployment_events(dep)[-1]
    assert ready.fields == {"version": "2", "canary_agent_ids": ["worker-0"], "promotion": "manual"}
    assert set(v1) <= set(world.runtime.live)
    assert api(world) == V1_SERVING


def test_r6_not_all_canaries_healthy_keeps_running() -> None:
    world, _, dep = canary_world(canary=2)
    world.bring_up(world.fresh()[:1])
    world.advance(world.clock.now + 5000)

    assert world.record(dep).status == "running"
    assert "deployment_canary_ready" not in world.event_types(dep)


def test_r6_auto_promote_promotes_once_canaries_are_healthy() -> None:
    # scenario 22: with auto_promote -> successful directly
    world, v1, dep = canary_world(auto_promote=True)
    assert world.record(dep).description == "Deployment is running pending automatic promotion"
    world.bring_up()
    world.advance(world.clock.now + 999)
    assert world.record(dep).description == "Deployment is running pending automatic promotion"

    world.advance(world.clock.now + 1)
    record = world.record(dep)
    assert record.status == "running"  # promoted: the remaining agents roll
    assert record.description == "Deployment is running"
    types = world.event_types(dep)
    assert types.index("deployment_canary_ready") < types.index("deployment_promoted")
    assert v1[0] in world.runtime.stopped

    world.converge()
    assert world.record(dep).status == "successful"
    assert "awaiting_promotion" not in {r.status for r in world.controller.list(KEY)}


def test_r6_promote_makes_canaries_primary_stops_their_old_instances_and_rolls_the_rest() -> None:
    world, v1, dep = canary_world(max_parallel=1)
    world.converge()
    canary = world.instances_of(dep)[0].instance_id

    record = world.controller.promote(KEY, now=world.clock.now)

    assert record.status == "running"
    assert record.description == "Deployment is running"
    assert world.event_types(dep)[-2:] == ["deployment_promoted", "deployment_instance_placed"]
    assert world.runtime.stopped == [v1[0], v1[1]]  # worker-0's old instance, and worker-1's for the roll
    views = {v.instance_id: v for v in world.instances_of(dep)}
    assert views[canary].role == "primary"
    assert world.runtime.placements[world.runtime.order[-1]].agent_id == "worker-1"
    assert world.runtime.placements[world.runtime.order[-1]].role == "primary"
    assert ("worker-0", "2", "primary") in api(world)
    assert list(record.remaining_agent_ids) == ["worker-2"]


def test_r6_scenario_21_promote_finishes_the_rollout() -> None:
    # scenario 21: the 2 remaining replaced; services primary; v2 stable; successful
    world, v1, dep = canary_world()
    world.converge()

    world.controller.promote(KEY, now=world.clock.now)
    world.converge()

    record = world.record(KEY)
    assert record.deployment_id == dep
    assert record.status == "successful"
    assert record.description == "Deployment completed successfully"
    assert record.current_version == record.stable_version == "2"
    assert world.store.load_version(KEY, "2").stable
    assert set(v1) <= set(world.runtime.stopped)
    assert api(world) == [("worker-0", "2", "primary"), ("worker-1", "2", "primary"), ("worker-2", "2", "primary")]
    assert record.counters.to_json() == {
        "desired_total": 3,
        "desired_canaries": 1,
        "placed": 3,
        "healthy": 3,
        "unhealthy": 0,
    }


def test_r6_promote_refused_while_running() -> None:
    # scenario 23: promote when not awaiting -> "deployment is <s>, expected awaiting_promotion"
    world, _, dep = canary_world()
    before = world.record(dep)

    with pytest.raises(RefusedError) as info:
        world.controller.promote(KEY, now=world.clock.now)

    assert info.value.message == "deployment is running, expected awaiting_promotion"
    assert world.record(dep) == before
    assert [i.role for i in world.instances_of(dep)] == ["canary"]


def test_r6_promote_refused_while_paused() -> None:
    world, _, dep = canary_world()
    world.converge()
    world.controller.pause(KEY, now=world.clock.now)

    with pytest.raises(RefusedError) as info:
        world.controller.promote(dep, now=world.clock.now)

    assert info.value.message == "deployment is paused, expected awaiting_promotion"


def test_r6_promote_refused_on_a_terminal_deployment() -> None:
    world, _, dep = canary_world()
    world.converge()
    world.controller.promote(dep, now=world.clock.now)
    world.converge()
    before = world.record(dep)

    with pytest.raises(RefusedError) as info:
        world.controller.promote(dep, now=world.clock.now)

    assert info.value.message == f"deployment {dep} is successful; it can't be promoted"
    assert world.record(dep) == before
