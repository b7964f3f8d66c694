"""R3 and R4: how a deploy is routed (initial, rerun, noop, blue-green, agent-level) and how a newer deploy cancels.

Reference: SEMANTICS.md §3, reference/mirrorneuron-deployments.md §7 and §18 scenarios 17, 18, 24, 26 and 27.
"""

from __future__ import annotations

from typing import Any

import pytest

from mn_deploy_core.ports import FactKind, Role
from mn_deploy_core.records import ACTIVE_STATUSES
from tests.scripted import World, service_manifest

KEY = "agent-api"


def stable_world(**kwargs: Any) -> World:
    """A world where version 1 of `service_manifest(**kwargs)` was deployed and is stable."""
    return World.settled(service_manifest(**kwargs))


def node(node_id: str, image: str = "cache:1", **extra: Any) -> dict[str, Any]:
    return {"node_id": node_id, "agent_type": "executor", "config": {"image": image}, **extra}


def roles_placed(world: World, deployment_id: str) -> dict[str, str]:
    return {p.agent_id: str(p.role) for p in world.runtime.placements.values() if p.deployment_id == deployment_id}


# --- new key ------------------------------------------------------------------------------------------------


def test_r3_new_key_places_every_agent_as_primary_at_once() -> None:
    world = World()
    record = world.deploy(service_manifest(count=5, update={"max_parallel": 1, "strategy": "canary", "canary": 2}))

    assert record.status == "running"
    assert record.description == "Deployment is running"
    assert record.mode == "initial"
    assert len(world.runtime.order) == 5
    assert roles_placed(world, record.deployment_id) == {f"worker-{i}": "primary" for i in range(5)}
    assert [s.deployment_role for s in world.registry.lookup("api", passing_only=False)] == ["primary"] * 5


def test_r3_new_key_runs_until_healthy_then_succeeds_with_stable_version_1() -> None:
    # scenario 17: successful; version "1" stable; current = stable = target; created event
    world = World()
    world.deploy(service_manifest())
    world.bring_up()
    world.advance(999)
    assert world.record(KEY).status == "running"

    world.advance(1000)
    record = world.record(KEY)
    assert record.status == "successful"
    assert record.description == "Deployment completed successfully"
    assert record.current_version == record.stable_version == record.target_version == "1"
    assert record.current_job_id == record.stable_job_id
    assert world.store.load_version(KEY, "1").stable
    types = world.event_types(KEY)
    assert types[0] == "deployment_created"
    assert types[-1] == "deployment_successful"


# --- rerun --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("job_type", ["batch", "sysbatch"])
def test_r3_batch_update_is_a_rerun_with_version_recorded(job_type: str) -> None:
    # scenario 27: version_recorded; new job; stable unchanged; version not stable
    world = stable_world(job_type=job_type)
    before = world.record(KEY)
    placed_before = len(world.runtime.order)

    record = world.deploy(service_manifest("agent:2", job_type=job_type))

    assert record.status == "version_recorded"
    assert record.description == "Batch version recorded as rerun"
    assert record.current_version == "2"
    assert record.current_job_id not in (None, before.current_job_id)
    assert (record.stable_version, record.stable_job_id) == (before.stable_version, before.stable_job_id)
    version = world.store.load_version(KEY, "2")
    assert version is not None and not version.stable
    assert version.job_id == record.current_job_id
    assert world.store.load_version(KEY, "1").stable
    new = world.runtime.order[placed_before:]
    assert {world.runtime.placements[i].job_id for i in new} == {record.current_job_id}
    assert "deployment_version_recorded" in world.event_types(record.deployment_id)
    assert "deployment_started" not in world.event_types(record.deployment_id)


# --- noop ---------------------------------------------------------------------------------------------------


def test_r3_identical_redeploy_is_a_noop_with_a_new_stable_version() -> None:
    # scenario 18: successful, v2 stable, noop event
    world = stable_world()
    placed, stopped = list(world.runtime.order), list(world.runtime.stopped)

    record = world.deploy(service_manifest(update={"max_parallel": 3}))  # policy only: same specification

    assert record.status == "successful"
    assert record.description == "Deployment contained no runtime changes"
    assert record.current_version == record.stable_version == "2"
    assert world.store.load_version(KEY, "2").stable
    assert world.runtime.order == placed
    assert world.runtime.stopped == stopped
    assert world.controller.next_wakeup() is None
    assert world.event_types(record.deployment_id)[-1] == "deployment_noop"


# --- blue-green routing ---------------------------------------------------------------------------------------


def test_r3_blue_green_strategy_routes_to_whole_job_blue_green() -> None:
    world = stable_world()
    before = world.record(KEY)

    record = world.deploy(service_manifest("agent:2", update={"strategy": "blue-green"}))

    assert record.mode == "blue_green"
    assert record.strategy == "blue-green"
    assert record.target_job_id != before.current_job_id
    assert roles_placed(world, record.deployment_id) == {f"worker-{i}": "candidate" for i in range(3)}


def two_node_manifest(
    image: str = "agent:1", cache: str = "cache:1", edges: Any = None, more: tuple[str, ...] = (), **kwargs: Any
) -> dict[str, Any]:
    """`worker` (count 3) -> `cache`, plus a node per id in `more`."""
    manifest = service_manifest(image, extra_nodes=[node("cache", cache), *map(node, more)], **kwargs)
    manifest["edges"] = [{"from_node": "worker", "to_node": "cache"}] if edges is None else edges
    return manifest


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda: two_node_manifest(more=("queue",)), id="added-node"),
        pytest.param(lambda: two_node_manifest(count=4), id="changed-count"),
        pytest.param(lambda: two_node_manifest(edges=[{"from_node": "cache", "to_node": "worker"}]), id="changed-edge"),
        pytest.param(lambda: two_node_manifest(edges=[]), id="removed-edge"),
        pytest.param(lambda: two_node_manifest(entrypoints=["cache"]), id="changed-entrypoints"),
    ],
)
def test_r3_changed_topology_routes_to_whole_job_blue_green(change: Any) -> None:
    # scenario 24: an added node -> a new job; mode blue_green (also count, edges, entrypoints)
    world = World()
    world.deploy(two_node_manifest())
    world.converge()
    old_job = world.record(KEY).current_job_id

    record = world.deploy(change())

    assert record.mode == "blue_green"
    assert record.target_job_id != old_job
    assert set(roles_placed(world, record.deployment_id).values()) == {"candidate"}


def test_r3_dead_current_job_routes_to_blue_green() -> None:
    # scenario 26: the source job failed with the same topology -> blue-green
    world = stable_world()
    for instance_id in world.runtime.live:
        world.report(instance_id, FactKind.FAILED)

    record = world.deploy(service_manifest("agent:2"))

    assert record.mode == "blue_green"
    assert set(roles_placed(world, record.deployment_id).values()) == {"candidate"}


def test_r3_partly_failed_current_job_still_updates_agent_level() -> None:
    world = stable_world()
    world.report(world.runtime.live[0], FactKind.FAILED)

    record = world.deploy(service_manifest("agent:2"))

    assert record.mode == "agent_level"


# --- agent-level routing --------------------------------------------------------------------------------------


def test_r3_agent_level_replaces_only_changed_agents() -> None:
    world = World()
    world.deploy(two_node_manifest())
    world.converge()
    worker_ids = [i for i in world.runtime.live if ".worker-" in i]

    record = world.deploy(two_node_manifest(cache="cache:2"))

    assert record.mode == "agent_level"
    assert record.changed_agent_ids == ("cache",)
    assert record.counters.desired_total == 1
    world.converge()
    done = world.record(KEY)
    assert done.status == "successful"
    assert roles_placed(world, record.deployment_id) == {"cache": "primary"}
    assert set(worker_ids) <= set(world.runtime.live)


def test_r3_changed_agents_are_compared_per_agent_with_what_runs() -> None:
    # a rollout of v2 cancelled after one agent: redeploying v2 changes only the agents still at v1
    world = stable_world()
    first = world.deploy(service_manifest("agent:2"))
    world.bring_up()
    world.advance(world.clock.now + 1000)
    assert world.record(first.deployment_id).remaining_agent_ids == ("worker-2",)
    world.bring_up()  # worker-1 reports, but no verdict yet

    record = world.deploy(service_manifest("agent:2"))

    assert record.mode == "agent_level"
    assert record.changed_agent_ids == ("worker-2",)


@pytest.mark.parametrize(
    ("update", "expected"),
    [
        pytest.param({"strategy": "canary", "canary": 0}, 1, id="canary-strategy-canary-0"),
        pytest.param({"strategy": "canary", "canary": 2}, 2, id="canary-2-of-3"),
        pytest.param({"strategy": "canary", "canary": 5}, 3, id="canary-5-capped-at-3"),
        pytest.param({"strategy": "rolling", "canary": 2}, 2, id="rolling-with-canary"),
        pytest.param({"strategy": "rolling", "canary": 0}, 0, id="rolling-without-canary"),
    ],
)
def test_r3_canary_count_rule(update: dict[str, Any], expected: int) -> None:
    world = stable_world()

    record = world.deploy(service_manifest("agent:2", update=update))

    assert record.mode == "agent_level"
    assert record.counters.desired_canaries == expected
    assert record.canary_agent_ids == tuple(f"worker-{i}" for i in range(expected))
    if expected:  # nothing but the canaries starts before promotion
        assert list(record.remaining_agent_ids) == [f"worker-{i}" for i in range(expected, 3)]
    canaries = [a for a, role in roles_placed(world, record.deployment_id).items() if role == Role.CANARY]
    assert canaries == list(record.canary_agent_ids)


def test_r3_canary_count_is_capped_by_changed_agents_not_by_all_agents() -> None:
    world = World()
    world.deploy(two_node_manifest(update={"canary": 3}))
    world.converge()

    record = world.deploy(two_node_manifest(cache="cache:2", update={"canary": 3}))

    assert record.canary_agent_ids == ("cache",)
    assert record.counters.desired_canaries == 1
    assert record.remaining_agent_ids == ()


# --- cancellation (R4) ----------------------------------------------------------------------------------------


def test_r4_newer_deploy_cancels_active_canary_deployment() -> None:
    world = stable_world()
    v1 = list(world.runtime.live)
    first = world.deploy(service_manifest("agent:2", update={"strategy": "canary", "canary": 2}))
    canaries = [i for i in world.runtime.live if i not in v1]
    assert len(canaries) == 2

    second = world.deploy(service_manifest("agent:3"))

    cancelled = world.record(first.deployment_id)
    assert cancelled.status == "cancelled"
    assert cancelled.description == "Cancelled due to newer version"
    assert "deployment_cancelled" in world.event_types(first.deployment_id)
    assert set(canaries) <= set(world.runtime.stopped)
    assert world.record(KEY).deployment_id == second.deployment_id
    assert second.status == "running"


def test_r4_newer_deploy_cancels_awaiting_blue_green_and_stops_candidates() -> None:
    world = stable_world()
    v1 = list(world.runtime.live)
    first = world.deploy(service_manifest("agent:2", update={"strategy": "blue-green", "canary": 1}))
    world.converge()
    assert world.record(first.deployment_id).status == "awaiting_promotion"
    candidates = [i for i in world.runtime.live if i not in v1]

    world.deploy(service_manifest("agent:3", update={"strategy": "canary", "canary": 1}))

    assert world.record(first.deployment_id).status == "cancelled"
    assert set(candidates) <= set(world.runtime.stopped)
    assert set(v1) <= set(world.runtime.live)


def test_r4_cancel_keeps_agents_already_rolled_as_primaries() -> None:
    world = stable_world()
    first = world.deploy(service_manifest("agent:2"))
    world.bring_up()
    world.advance(world.clock.now + 1000)
    rolled = [v.instance_id for v in world.instances_of(first.deployment_id) if v.healthy]

    world.deploy(service_manifest("agent:3", update={"strategy": "canary"}))

    assert rolled
    assert set(rolled) <= set(world.runtime.live)


def test_r4_at_most_one_active_deployment_per_key() -> None:
    world = stable_world()
    for image in ("agent:2", "agent:3", "agent:4"):
        world.deploy(service_manifest(image, update={"strategy": "canary", "canary": 1}))
        world.bring_up()
        world.advance(world.clock.now + 500)
        active = [r for r in world.controller.list(KEY) if r.status in ACTIVE_STATUSES]
        assert [r.deployment_id for r in active] == [world.record(KEY).deployment_id]
    world.converge()
    assert world.record(KEY).status == "awaiting_promotion"
    statuses = [r.status for r in world.controller.list(KEY)]
    assert statuses == ["successful", "cancelled", "cancelled", "awaiting_promotion"]


def test_r4_batch_rerun_cancels_an_active_deployment() -> None:
    world = World()
    first = world.deploy(service_manifest(job_type="batch"))

    record = world.deploy(service_manifest("agent:2", job_type="batch"))

    assert world.record(first.deployment_id).status == "cancelled"
    assert record.status == "version_recorded"
