"""R7: whole-job blue-green: hidden candidates in a new job, the old job serving until promotion.

Reference: SEMANTICS.md §6, reference/mirrorneuron-deployments.md §18 scenarios 24-26.
"""

from __future__ import annotations

from typing import Any

import pytest

from mn_deploy_core.ports import FactKind
from tests.scripted import World, service_manifest

KEY = "agent-api"


def blue_green_world(count: int = 3, **update: Any) -> tuple[World, list[str], str, str]:
    """v1 stable, then v2 deployed with `update` (strategy blue-green unless given).

    Returns the world, v1's instance ids, v1's job id and v2's deployment id.
    """
    world = World()
    world.deploy(service_manifest())
    world.converge()
    v1 = list(world.runtime.live)
    old_job = world.record(KEY).current_job_id
    assert old_job is not None
    record = world.deploy(service_manifest("agent:2", count=count, update={"strategy": "blue-green", **update}))
    return world, v1, old_job, record.deployment_id


def api(world: World, **options: Any) -> list[tuple[str, str, str]]:
    return sorted(
        (s.agent_id, s.deployment_version, s.deployment_role) for s in world.registry.lookup("api", **options)
    )


def test_r7_candidates_start_in_a_new_job_beside_the_old_one() -> None:
    world, v1, old_job, dep = blue_green_world()

    record = world.record(dep)
    assert record.mode == "blue_green"
    assert record.source_job_id == old_job
    assert record.target_job_id not in (None, old_job)
    candidates = world.instances_of(dep)
    assert [(c.agent_id, c.role, c.job_id) for c in candidates] == [
        (f"worker-{i}", "candidate", record.target_job_id) for i in range(3)
    ]
    assert {world.runtime.placements[c.instance_id].phase for c in candidates} == {"blue_green"}
    assert set(v1) <= set(world.runtime.live)
    assert world.runtime.stopped == []
    started = world.store.deployment_events(dep)[0]
    assert started.type == "deployment_started"
    assert started.fields == {"version": "2", "target_job_id": record.target_job_id, "mode": "blue_green"}


def test_r7_candidates_are_hidden_and_the_old_job_serves_until_promotion() -> None:
    world, _, old_job, dep = blue_green_world(canary=1)
    world.converge()

    record = world.record(dep)
    assert record.status == "awaiting_promotion"
    assert record.current_job_id == old_job
    assert api(world) == [(f"worker-{i}", "1", "primary") for i in range(3)]
    assert api(world, role="candidate") == [(f"worker-{i}", "2", "candidate") for i in range(3)]
    assert len(api(world, include_candidates=True)) == 6


@pytest.mark.parametrize(
    ("update", "awaits"),
    [
        pytest.param({"canary": 1}, True, id="canary-1"),
        pytest.param({"canary": 2, "auto_promote": True}, False, id="canary-auto-promote"),
        pytest.param({"canary": 0}, False, id="no-canary"),
    ],
)
def test_r7_awaits_promotion_only_with_canary_and_without_auto_promote(update: dict[str, Any], awaits: bool) -> None:
    world, v1, _, dep = blue_green_world(**update)
    world.converge()

    record = world.record(dep)
    if awaits:
        assert (record.status, record.description) == (
            "awaiting_promotion",
            "Deployment is running but requires manual promotion",
        )
        assert set(v1) <= set(world.runtime.live)
    else:
        assert (record.status, record.description) == ("successful", "Deployment completed successfully")
        assert "deployment_promoted" in world.event_types(dep)
        assert set(v1) <= set(world.runtime.stopped)


def test_r7_promote_makes_candidates_primary_and_stops_the_old_job() -> None:
    world, v1, old_job, dep = blue_green_world(canary=1)
    world.converge()
    candidates = [c.instance_id for c in world.instances_of(dep)]

    record = world.controller.promote(KEY, now=world.clock.now)

    assert record.status == "successful"
    assert record.current_job_id == record.stable_job_id == record.target_job_id != old_job
    assert record.current_version == record.stable_version == "2"
    assert world.store.load_version(KEY, "2").stable
    assert sorted(world.runtime.stopped) == sorted(v1)
    assert world.runtime.live == candidates
    assert {c.role for c in world.instances_of(dep)} == {"primary"}
    assert api(world) == [(f"worker-{i}", "2", "primary") for i in range(3)]
    types = world.event_types(dep)
    assert (
        types.index("deployment_canary_ready")
        < types.index("deployment_promoted")
        < types.index("deployment_successful")
    )


def test_r7_the_promoted_job_is_what_the_next_update_rolls() -> None:
    world, _, _, dep = blue_green_world()
    world.converge()
    new_job = world.record(dep).current_job_id

    record = world.deploy(service_manifest("agent:3"))

    assert record.mode == "agent_level"
    assert record.source_job_id == record.target_job_id == new_job


def test_r7_scenario_24_added_node_starts_a_new_job_and_stops_the_old_one() -> None:
    world = World()
    world.deploy(service_manifest())
    world.converge()
    v1 = list(world.runtime.live)
    old_job = world.record(KEY).current_job_id
    extra = {"node_id": "cache", "agent_type": "executor", "config": {}}

    record = world.deploy(service_manifest(extra_nodes=[extra]))
    world.converge()

    done = world.record(record.deployment_id)
    assert done.mode == "blue_green"
    assert done.status == "successful"
    assert done.current_job_id != old_job
    assert set(world.runtime.stopped) == set(v1)
    assert sorted(v.agent_id for v in world.controller.instances(KEY)) == ["cache", "worker-0", "worker-1", "worker-2"]


def test_r7_scenario_25_topology_change_with_canary_awaits_with_candidates() -> None:
    # awaiting; candidate services; current_job is the old job
    world = World()
    world.deploy(service_manifest(update={"canary": 1}))
    world.converge()
    old_job = world.record(KEY).current_job_id

    record = world.deploy(service_manifest(count=4, update={"canary": 1}))
    world.converge()

    done = world.record(record.deployment_id)
    assert (done.mode, done.strategy, done.status) == ("blue_green", "blue-green", "awaiting_promotion")
    assert done.current_job_id == old_job
    assert done.canary_agent_ids == ()  # blue-green has no agent-level canaries
    assert {v.role for v in world.instances_of(record.deployment_id)} == {"candidate"}
    assert len(api(world)) == 3


def test_r7_scenario_26_dead_source_job_goes_blue_green_and_replaces_the_whole_job() -> None:
    world = World()
    world.deploy(service_manifest(reschedule=0))  # a lost agent stays lost (R16)
    world.converge()
    old_job = world.record(KEY).current_job_id
    for instance_id in world.runtime.live:
        world.report(instance_id, FactKind.FAILED)
    assert api(world) == []

    record = world.deploy(service_manifest("agent:2"))
    world.converge()

    done = world.record(record.deployment_id)
    assert (done.mode, done.status) == ("blue_green", "successful")
    assert done.current_job_id != old_job
    assert api(world) == [(f"worker-{i}", "2", "primary") for i in range(3)]
