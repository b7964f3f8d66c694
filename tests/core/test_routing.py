"""R3 and R4: how a deploy is routed (initial, rerun, noop, blue-green, agent-level) and how a newer deploy cancels.

Reference: SEMANTICS.md §3, reference/mirrorneuron-deployments.md §7 and §18 scenarios 17, 18, 24, 26 and 27.
"""

from __future__ import annotations

from typing import Any

import pytest

from mn_deploy_core.manifest import load_manifest
from mn_deploy_core.ports import FactKind, Role
from mn_deploy_core.status import ACTIVE
from tests.scripted import World, service_manifest

KEY = "agent-api"


def stable_world(**kwargs: Any) -> World:
    """A world where version 1 of `service_manifest(**kwargs)` was deployed and is stable."""
    return World.settled(service_manifest(**kwargs))


def node(node_id: str, image: str = "cache:1", **extra: Any) -> dict[str, Any]:
    return {"node_id": node_id, "agent_type": "executor", "config": {"image": image}, **extra}


def roles_placed(world: World, deployment_id: str) -> dict[str, str]:
    return {p.agent_id: str(p.role) for p in world.runtime.placements.values() if p.deployment_id == deployment_id}


def world_state(world: World) -> tuple[Any, ...]:
    """Everything a deploy could change: records and their stored events, versions, placements and stops."""
    records = [r.to_json() for r in world.controller.list(KEY)]
    events = [len(world.store.deployment_events(r["deployment_id"])) for r in records]
    versions = [v.version for v in world.controller.versions(KEY)]
    return records, events, versions, list(world.runtime.order), list(world.runtime.stopped)


def versions(world: World) -> dict[str, bool]:
    """Each version of the key and whether it is stable."""
    return {v.version: v.stable for v in world.controller.versions(KEY)}


def live_digests(world: World) -> set[str]:
    return {v.spec_digest for v in world.controller.instances(KEY)}


def digest_of(image: str) -> str:
    return load_manifest(service_manifest(image)).agents["worker-0"].digest


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


# --- step 0: idempotent redeploy -----------------------------------------------------------------------------


def test_r3_step0_same_spec_redeploy_while_rolling_is_idempotent() -> None:
    world = stable_world()
    rolling = world.deploy(service_manifest("agent:2"))
    world.bring_up()
    world.advance(world.clock.now + 1000)  # worker-0 healthy at v2, worker-1 placed, worker-2 waiting
    before = world_state(world)

    record = world.deploy(service_manifest("agent:2"))

    assert record.to_json() == world.record(KEY).to_json()
    assert (record.deployment_id, record.status, record.target_version) == (rolling.deployment_id, "running", "2")
    assert world_state(world) == before  # no version, no record, no event, nothing placed or stopped
    world.converge()
    assert world.record(KEY).status == "successful"
    assert versions(world) == {"1": True, "2": True}
    assert live_digests(world) == {digest_of("agent:2")}


def awaiting_canary(world: World) -> None:
    world.deploy(service_manifest("agent:2", update={"strategy": "canary", "canary": 1}))
    world.converge()
    assert world.record(KEY).status == "awaiting_promotion"


def paused_rolling(world: World) -> None:
    world.deploy(service_manifest("agent:2", update={"strategy": "canary", "canary": 1}))
    world.controller.pause(KEY, now=world.clock.now)


@pytest.mark.parametrize("hold", [awaiting_canary, paused_rolling], ids=["awaiting-promotion", "paused"])
def test_r3_step0_same_spec_redeploy_of_a_waiting_deployment_is_idempotent(hold: Any) -> None:
    world = stable_world()
    hold(world)
    before = world_state(world)
    waiting = world.record(KEY)

    record = world.deploy(service_manifest("agent:2", update={"strategy": "canary", "canary": 1}))

    assert record.to_json() == waiting.to_json()
    assert world_state(world) == before
    if record.status == "paused":
        world.controller.resume(KEY, now=world.clock.now)
        world.converge()
    world.controller.promote(KEY, now=world.clock.now)  # still the operator's to finish
    world.converge()
    assert world.record(KEY).status == "successful"
    assert versions(world) == {"1": True, "2": True}


def first_rollout(world: World) -> dict[str, Any]:
    world.deploy(service_manifest(update={"max_parallel": 1}))
    return service_manifest(update={"max_parallel": 3})


def blue_green_rollout(world: World) -> dict[str, Any]:
    world.deploy(service_manifest())
    world.converge()
    world.deploy(service_manifest("agent:2", update={"strategy": "blue-green", "canary": 1}))
    return service_manifest("agent:2", update={"strategy": "blue-green", "max_parallel": 3})


@pytest.mark.parametrize("start", [first_rollout, blue_green_rollout], ids=["initial", "blue-green"])
def test_r3_step0_whole_job_routes_are_idempotent_whatever_the_policy(start: Any) -> None:
    # only an agent-level route is shaped by the policy; a whole job runs every agent at the target spec anyway
    world = World()
    again = start(world)
    before = world_state(world)

    record = world.deploy(again)

    assert record.to_json() == world.record(KEY).to_json()
    assert record.status == "running"
    assert world_state(world) == before


def test_r3_step0_same_spec_with_another_policy_is_not_idempotent_for_an_agent_level_route() -> None:
    world = stable_world()
    first = world.deploy(service_manifest("agent:2"))
    world.bring_up()
    world.advance(world.clock.now + 1000)  # worker-0 healthy at v2, worker-1 placed at v2

    record = world.deploy(service_manifest("agent:2", update={"max_parallel": 2}))

    assert world.record(first.deployment_id).status == "cancelled"
    assert (record.mode, record.target_version, record.status) == ("agent_level", "3", "running")
    assert record.changed_agent_ids == ("worker-2",)  # worker-0 and worker-1 have live v2 instances
    assert roles_placed(world, record.deployment_id) == {"worker-2": "primary"}
    world.converge()
    assert world.record(KEY).status == "successful"
    assert versions(world) == {"1": True, "2": False, "3": True}
    assert live_digests(world) == {digest_of("agent:2")}


def test_r3_step0_does_not_apply_once_the_active_deployment_ended() -> None:
    world = stable_world()
    world.deploy(service_manifest("agent:2"))
    world.converge()
    placed = list(world.runtime.order)

    record = world.deploy(service_manifest("agent:2"))

    assert (record.mode, record.status, record.target_version) == ("noop", "successful", "3")
    assert versions(world) == {"1": True, "2": True, "3": True}
    assert world.runtime.order == placed


def test_r3_step0_applies_to_deploys_only_not_to_a_rollback_of_the_same_spec() -> None:
    world = stable_world()
    world.deploy(service_manifest("agent:2"))
    world.converge()
    first = world.controller.rollback(KEY, now=world.clock.now)  # v3, a copy of v1, rolling

    again = world.controller.rollback(KEY, version="1", now=world.clock.now)

    assert world.record(first.deployment_id).status == "cancelled"
    assert again.deployment_id != first.deployment_id
    assert again.target_version == "4"
    assert again.rollback == {"from_version": "3", "to_version": "1", "reason": None}


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


@pytest.mark.parametrize("job_type", ["batch", "sysbatch"])
def test_r3b_batch_first_deploy_is_successful_at_once_with_stable_version_1(job_type: str) -> None:
    world = World()

    record = world.deploy(service_manifest(job_type=job_type))

    assert (record.status, record.description, record.mode) == (
        "successful",
        "Deployment completed successfully",
        "initial",
    )
    assert record.current_version == record.stable_version == record.target_version == "1"
    assert record.current_job_id == record.stable_job_id == record.target_job_id is not None
    assert versions(world) == {"1": True}
    assert world.store.load_version(KEY, "1").job_id == record.current_job_id
    placed = [p for p in world.runtime.placements.values() if p.deployment_id == record.deployment_id]
    assert {(p.agent_id, str(p.role), p.phase, p.job_id) for p in placed} == {
        (f"worker-{i}", "primary", "initial", record.current_job_id) for i in range(3)
    }
    assert record.counters.placed == record.counters.desired_total == 3
    assert world.event_types(KEY) == ["deployment_created", "deployment_successful"]
    world.advance(world.clock.now + 3_600_000)  # not health gated: silence changes nothing
    assert world.record(KEY).to_json() == record.to_json()


def test_r3b_batch_reruns_start_beside_the_first_job_and_cancel_nothing() -> None:
    world = World()
    first = world.deploy(service_manifest(job_type="batch"))
    first_instances = list(world.runtime.live)

    rerun = world.deploy(service_manifest("agent:2", job_type="batch"))
    same = world.deploy(service_manifest("agent:2", job_type="batch"))  # the same spec reruns too

    for record, version in ((rerun, "2"), (same, "3")):
        assert (record.status, record.mode, record.current_version) == ("version_recorded", "rerun", version)
        assert (record.stable_version, record.stable_job_id) == ("1", first.current_job_id)
        assert {p.phase for p in world.runtime.placements.values() if p.deployment_id == record.deployment_id} == {
            "rerun"
        }
    assert rerun.current_job_id not in (first.current_job_id, same.current_job_id)
    assert world.record(first.deployment_id).status == "successful"
    assert versions(world) == {"1": True, "2": False, "3": False}
    assert world.runtime.stopped == []
    assert set(first_instances) <= set(world.runtime.live)


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


def test_r3_same_spec_onto_a_dead_job_is_no_noop_but_a_whole_job_blue_green() -> None:
    world = stable_world(reschedule=0)  # a lost agent stays lost (R16)
    old_job = world.record(KEY).current_job_id
    dead = list(world.runtime.live)
    for instance_id in dead:
        world.report(instance_id, FactKind.FAILED)

    record = world.deploy(service_manifest())

    assert (record.mode, record.status, record.target_version) == ("blue_green", "running", "2")
    assert record.target_job_id != old_job
    assert roles_placed(world, record.deployment_id) == {f"worker-{i}": "candidate" for i in range(3)}
    assert versions(world) == {"1": True, "2": False}
    world.converge()
    done = world.record(KEY)
    assert (done.status, done.current_job_id, done.stable_version) == ("successful", record.target_job_id, "2")
    assert set(dead) <= set(world.runtime.stopped)
    views = world.controller.instances(KEY)
    assert {(v.job_id, v.role, v.healthy) for v in views} == {(record.target_job_id, "primary", True)}


def test_r3_same_spec_onto_a_partly_dead_job_replaces_only_the_dead_agent() -> None:
    world = stable_world(reschedule=0)  # a lost agent stays lost (R16)
    dead, *alive = world.runtime.live
    world.report(dead, FactKind.FAILED)

    record = world.deploy(service_manifest())

    assert (record.mode, record.status) == ("agent_level", "running")
    assert record.changed_agent_ids == (world.runtime.placements[dead].agent_id,)
    assert versions(world) == {"1": True, "2": False}
    world.converge()
    assert world.record(KEY).status == "successful"
    assert versions(world) == {"1": True, "2": True}
    assert dead in world.runtime.stopped
    assert set(alive) <= set(world.runtime.live)
    assert all(v.healthy and v.role == "primary" for v in world.controller.instances(KEY))


def test_r3_an_instance_stopped_for_a_replacement_runs_nothing() -> None:
    # v2's worker-2 turns unhealthy while paused: it is stopped, its replacement waits, then v2 is failed
    world = stable_world()
    first = world.deploy(service_manifest("agent:2", update={"max_parallel": 3}))
    by_agent = {v.agent_id: v.instance_id for v in world.instances_of(first.deployment_id)}
    world.bring_up([by_agent["worker-0"], by_agent["worker-1"]])
    world.advance(world.clock.now + 1000)
    world.controller.pause(KEY, now=world.clock.now)
    world.advance(world.clock.now + 300_000)  # past the healthy deadline
    assert by_agent["worker-2"] in world.runtime.stopped
    world.controller.fail(KEY, now=world.clock.now)

    record = world.deploy(service_manifest("agent:2", update={"max_parallel": 3}))

    assert (record.mode, record.changed_agent_ids) == ("agent_level", ("worker-2",))


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
    world = stable_world(reschedule=0)  # a lost agent stays lost (R16)
    for instance_id in world.runtime.live:
        world.report(instance_id, FactKind.FAILED)

    record = world.deploy(service_manifest("agent:2"))

    assert record.mode == "blue_green"
    assert set(roles_placed(world, record.deployment_id).values()) == {"candidate"}


def test_r3_partly_failed_current_job_still_updates_agent_level() -> None:
    world = stable_world(reschedule=0)  # a lost agent stays lost (R16)
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
    # a rollout of v2 failed after one agent: redeploying v2 changes only the agents without a live v2 instance
    world = stable_world()
    first = world.deploy(service_manifest("agent:2"))
    world.bring_up()
    world.advance(world.clock.now + 1000)
    assert world.record(first.deployment_id).remaining_agent_ids == ("worker-2",)
    world.bring_up()  # worker-1 reports, but no verdict yet
    world.controller.fail(first.deployment_id, now=world.clock.now)

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
        active = [r for r in world.controller.list(KEY) if r.status in ACTIVE]
        assert [r.deployment_id for r in active] == [world.record(KEY).deployment_id]
    world.converge()
    assert world.record(KEY).status == "awaiting_promotion"
    statuses = [r.status for r in world.controller.list(KEY)]
    assert statuses == ["successful", "cancelled", "cancelled", "awaiting_promotion"]


def test_r4_batch_rerun_cancels_an_active_deployment() -> None:
    # a batch key's own deploys are never active (R3b): the active one here is a service rollout of the key
    world = World()
    first = world.deploy(service_manifest())

    record = world.deploy(service_manifest("agent:2", job_type="batch"))

    assert world.record(first.deployment_id).status == "cancelled"
    assert record.status == "version_recorded"
