"""R10: what a failure stops, what it leaves, and auto-revert to the highest stable other version.

Reference: SEMANTICS.md §9, reference/peers.md §2.5 (Nomad's revert trigger, target and no-op guard).
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest

from mn_deploy_core.errors import UndeployableVersionError
from mn_deploy_core.manifest import load_manifest
from mn_deploy_core.ports import FactKind
from mn_deploy_core.status import FAILED_BY_OPERATOR, FAILED_DEADLINE, FAILED_UNHEALTHY, NOOP
from tests.scripted import World, service_manifest

KEY = "agent-api"
PD = 60_000
TIMING = {"min_healthy_ms": 1000, "healthy_deadline_ms": 25_000, "progress_deadline_ms": PD}


def manifest(image: str = "agent:1", **update: Any) -> dict[str, Any]:
    count = update.pop("count", 3)
    extra_nodes = update.pop("extra_nodes", ())
    return service_manifest(image, count=count, extra_nodes=extra_nodes, update={**TIMING, **update})


def stable_world(image: str = "agent:1", **update: Any) -> World:
    return World.settled(manifest(image, **update))


def digest_of(document: dict[str, Any], agent_id: str = "worker-0") -> str:
    return load_manifest(document).agents[agent_id].digest


def kill(world: World, instance_id: str, times: int = 2) -> None:
    """Report `instance_id` failed, then each replacement of it, `times` failures in all."""
    agent_id = world.runtime.placements[instance_id].agent_id
    deployment_id = world.runtime.placements[instance_id].deployment_id
    for _ in range(times):
        world.report(instance_id, FactKind.FAILED)
        replacements = [v.instance_id for v in world.instances_of(deployment_id) if v.agent_id == agent_id]
        if instance_id in replacements or not replacements:
            return
        (instance_id,) = replacements


def fail_second_agent(world: World) -> str:
    """With max_parallel 1: worker-0 rolls and turns healthy, then worker-1 fails twice (reschedule 1)."""
    deployment_id = world.record(KEY).deployment_id
    world.bring_up()
    world.advance(world.clock.now + 1000)
    (second,) = world.fresh()
    assert world.runtime.placements[second].agent_id == "worker-1"
    kill(world, second)
    return deployment_id


def versions(world: World) -> list[str]:
    return [v.version for v in world.controller.versions(KEY)]


def serving_digests(world: World) -> set[str]:
    return {world.runtime.placements[s.instance_id].spec_digest for s in world.registry.lookup("api")}


# --- what a failure stops and leaves ----------------------------------------------------------------------


def test_r10_failure_stops_unpromoted_canaries() -> None:
    world = stable_world()
    record = world.deploy(manifest("agent:2", strategy="canary", canary=2))
    canaries = world.fresh()
    assert len(canaries) == 2
    world.bring_up(canaries)
    world.advance(world.clock.now + 1000)
    assert world.record(KEY).status == "awaiting_promotion"
    world.controller.fail(KEY, now=world.clock.now)
    assert set(canaries) <= set(world.runtime.stopped)
    assert world.instances_of(record.deployment_id) == []
    assert {v.version for v in world.controller.instances(KEY)} == {"1"}
    assert serving_digests(world) == {digest_of(manifest())}


def test_r10_failure_stops_blue_green_candidates_and_the_old_job_serves_on() -> None:
    world = stable_world()
    old = set(world.runtime.live)
    extra = [{"node_id": "sidecar", "agent_type": "executor"}]
    record = world.deploy(manifest("agent:2", extra_nodes=extra))
    candidates = world.fresh()
    assert len(candidates) == 4
    world.bring_up(candidates[:2])
    world.advance(world.clock.now + 1000)
    world.controller.fail(KEY, now=world.clock.now)
    assert set(candidates) <= set(world.runtime.stopped)
    assert world.instances_of(record.deployment_id) == []
    assert set(world.runtime.live) == old
    assert {s.instance_id for s in world.registry.lookup("api")} == old


def test_r10_rolled_agents_stay_without_auto_revert() -> None:
    world = stable_world()
    world.deploy(manifest("agent:2", max_parallel=1))
    deployment_id = fail_second_agent(world)
    record = world.record(deployment_id)
    assert record.status == "failed"
    assert record.description == FAILED_UNHEALTHY
    assert record.reverted_to_version is None
    assert versions(world) == ["1", "2"]
    live = {v.agent_id: v for v in world.controller.instances(KEY)}
    # worker-0 stays at version 2, worker-2 was never touched; worker-1's failed instance stays as it is
    assert live["worker-0"].version == "2"
    assert live["worker-0"].spec_digest == digest_of(manifest("agent:2"))
    assert live["worker-2"].version == "1"
    assert live["worker-1"].version == "2"
    assert list(record.remaining_agent_ids) == ["worker-2"]


# --- auto-revert ------------------------------------------------------------------------------------------


def test_r10_auto_revert_deploys_a_copy_of_the_highest_stable_version() -> None:
    world = stable_world()
    v1 = world.controller.versions(KEY)[0]
    world.clock.now = 10_000
    world.deploy(manifest("agent:2", max_parallel=1, auto_revert=True))
    deployment_id = fail_second_agent(world)
    failed_at = world.clock.now

    failed = world.record(deployment_id)
    assert failed.status == "failed"
    assert failed.description == f"{FAILED_UNHEALTHY} - rolling back to version 1"
    assert failed.reverted_to_version == "1"
    events = world.store.deployment_events(deployment_id)
    assert [e.type for e in events][-2:] == ["deployment_failed", "deployment_reverted"]
    assert events[-1].fields["to_version"] == "1"
    assert events[-1].t_ms == failed_at

    revert = world.record(KEY)
    assert revert.deployment_id != deployment_id
    assert revert.target_version == "3"
    assert revert.rollback == {"from_version": "2", "to_version": "1", "reason": FAILED_UNHEALTHY}
    v3 = world.store.load_version(KEY, "3")
    assert v3 is not None
    assert v3.created_by == "auto_revert"
    assert v3.rollback == revert.rollback
    assert v3.manifest == v1.manifest
    assert v3.spec_digest == v1.spec_digest
    assert not v3.stable

    world.converge()
    revert = world.record(KEY)
    assert revert.status == "successful"
    assert revert.current_version == revert.stable_version == "3"
    assert {v.spec_digest for v in world.controller.instances(KEY)} == {digest_of(manifest())}
    assert len(world.registry.lookup("api")) == 3


def test_r10_auto_revert_target_is_the_highest_stable_other_version() -> None:
    world = stable_world()
    world.deploy(manifest("agent:2"))
    world.converge()
    world.deploy(manifest("agent:3", auto_revert=True))
    world.controller.fail(KEY, now=world.clock.now)
    revert = world.record(KEY)
    assert revert.rollback == {"from_version": "3", "to_version": "2", "reason": FAILED_BY_OPERATOR}
    assert world.store.load_version(KEY, "4").manifest == world.store.load_version(KEY, "2").manifest


def test_r10_auto_revert_skips_canaries_and_uses_the_failed_max_parallel() -> None:
    # version 1 was deployed with a canary policy; the revert to it must not stop at a canary
    world = stable_world(strategy="canary", canary=1, max_parallel=1)
    world.deploy(manifest("agent:2", max_parallel=2, auto_revert=True))
    first, second = world.fresh()
    world.bring_up([first, second])
    world.advance(world.clock.now + 1000)
    (third,) = world.fresh()
    kill(world, third)

    revert = world.record(KEY)
    assert revert.target_version == "3"
    assert revert.status == "running"
    assert revert.mode == "agent_level"
    assert revert.canary_agent_ids == ()
    assert revert.policy["max_parallel"] == 2
    assert revert.policy["canary"] == 0
    assert not revert.policy["auto_promote"]
    placed = world.instances_of(revert.deployment_id)
    assert [v.role for v in placed] == ["primary", "primary"]  # two at once: the failed max_parallel
    world.converge()
    revert = world.record(KEY)
    assert revert.status == "successful"
    assert "deployment_canary_ready" not in world.event_types(KEY)
    assert "deployment_promoted" not in world.event_types(KEY)


def test_r10_auto_revert_of_a_blue_green_target_promotes_without_the_operator() -> None:
    world = stable_world(strategy="blue-green", canary=1)
    world.deploy(manifest("agent:2", max_parallel=1, auto_revert=True))
    assert world.record(KEY).mode == "agent_level"
    fail_second_agent(world)
    revert = world.record(KEY)
    assert revert.target_version == "3"
    world.converge()
    revert = world.record(KEY)
    assert revert.status == "successful"
    assert {v.spec_digest for v in world.controller.instances(KEY)} == {digest_of(manifest())}


def test_r10_auto_revert_on_progress_deadline() -> None:
    world = stable_world()
    update = {"max_parallel": 1, "auto_revert": True}
    document = manifest("agent:2", **update)
    document["policies"]["reschedule"] = {"attempts": 10}
    record = world.deploy(document)
    world.advance(world.clock.now + PD)
    failed = world.record(record.deployment_id)
    assert failed.description == f"{FAILED_DEADLINE} - rolling back to version 1"
    revert = world.record(KEY)
    assert revert.rollback == {"from_version": "2", "to_version": "1", "reason": FAILED_DEADLINE}


def test_r10_same_spec_as_the_stable_target_is_not_reverted() -> None:
    # version 2 failed half-way (no revert); version 3 re-deploys version 1's spec and is failed too
    world = stable_world()
    world.deploy(manifest("agent:2", max_parallel=1))
    fail_second_agent(world)
    record = world.deploy(manifest("agent:1", auto_revert=True))
    assert record.status == "running"
    assert record.target_version == "3"
    world.controller.fail(KEY, now=world.clock.now)
    failed = world.record(KEY)
    assert failed.deployment_id == record.deployment_id
    assert failed.status == "failed"
    assert failed.description == (
        f"{FAILED_BY_OPERATOR} - not rolling back to stable version 1 as it has the same specification"
    )
    assert failed.reverted_to_version is None
    assert versions(world) == ["1", "2", "3"]
    assert "deployment_reverted" not in world.event_types(KEY)
    assert len(world.controller.list(KEY)) == 3


def test_r10_a_failing_revert_does_not_loop() -> None:
    # version 1 itself carries auto_revert, so the revert to it may revert again: the same-spec guard stops that
    world = stable_world(auto_revert=True)
    world.deploy(manifest("agent:2", max_parallel=1, auto_revert=True))
    fail_second_agent(world)
    revert = world.record(KEY)
    assert revert.target_version == "3"
    assert revert.policy["auto_revert"]
    world.controller.fail(KEY, now=world.clock.now)
    failed = world.record(KEY)
    assert failed.deployment_id == revert.deployment_id
    assert failed.description.endswith(" - not rolling back to stable version 1 as it has the same specification")
    assert versions(world) == ["1", "2", "3"]


def test_r10_no_stable_version_to_revert_to() -> None:
    world = World()
    record = world.deploy(manifest(auto_revert=True))
    world.controller.fail(KEY, now=world.clock.now)
    failed = world.record(record.deployment_id)
    assert failed.status == "failed"
    assert failed.description == f"{FAILED_BY_OPERATOR} - no stable version to auto revert to"
    assert failed.reverted_to_version is None
    assert versions(world) == ["1"]


def test_r10_canary_failure_with_auto_revert_ends_serving_the_old_version() -> None:
    world = stable_world()
    old = {s.instance_id for s in world.registry.lookup("api")}
    record = world.deploy(manifest("agent:2", strategy="canary", canary=1, auto_revert=True))
    (canary,) = world.fresh()
    kill(world, canary)

    failed = world.record(record.deployment_id)
    assert failed.status == "failed"
    assert failed.description == f"{FAILED_UNHEALTHY} - rolling back to version 1"
    assert world.instances_of(record.deployment_id) == []
    revert = world.record(KEY)
    assert revert.target_version == "3"
    world.converge()
    revert = world.record(KEY)
    assert revert.status == "successful"
    # the canary never replaced anything, so the revert has nothing to change
    assert revert.description == NOOP
    assert revert.stable_version == "3"
    assert {s.instance_id for s in world.registry.lookup("api")} == old
    assert serving_digests(world) == {digest_of(manifest())}


def test_r10_operator_fail_with_auto_revert_reverts() -> None:
    world = stable_world()
    world.deploy(manifest("agent:2", max_parallel=1, auto_revert=True))
    world.bring_up()
    world.advance(world.clock.now + 1000)
    world.controller.fail(KEY, reason="bad latency", now=world.clock.now)
    failed = world.controller.list(KEY, "failed")[0]
    assert failed.description == f"{FAILED_BY_OPERATOR} - rolling back to version 1"
    (event,) = [e for e in world.store.deployment_events(failed.deployment_id) if e.type == "deployment_failed"]
    assert event.fields["reason"] == "bad latency"
    world.converge()
    assert world.record(KEY).status == "successful"
    assert serving_digests(world) == {digest_of(manifest())}


def _spoil_version(world: World, version: str) -> None:
    """A version stored before a rule it breaks was added: its check has a type no worker knows today."""
    stored = next(v for v in world.controller.versions(KEY) if v.version == version)
    spoiled = copy.deepcopy(dict(stored.manifest))
    spoiled["nodes"][0]["services"] = [{"name": "api", "checks": [{"type": "grpc"}]}]
    world.store.save_version(replace(stored, manifest=spoiled))


def test_r10_a_stable_version_that_no_longer_validates_is_not_reverted_to_and_the_failure_says_so() -> None:
    world = stable_world()
    _spoil_version(world, "1")
    record = world.deploy(manifest("agent:2", auto_revert=True))
    world.controller.fail(KEY, now=world.clock.now)

    failed = world.record(record.deployment_id)
    assert failed.status == "failed"
    assert (
        failed.description == f"{FAILED_BY_OPERATOR} - not rolling back to stable version 1 as it no longer validates"
    )
    assert failed.reverted_to_version is None
    assert versions(world) == ["1", "2"]


def test_r11_a_rollback_to_a_version_that_no_longer_validates_is_refused_naming_it() -> None:
    world = stable_world()
    world.deploy(manifest("agent:2"))
    world.converge()
    _spoil_version(world, "1")

    with pytest.raises(UndeployableVersionError, match=r"^version 1 of agent-api can no longer be deployed: .*grpc"):
        world.controller.rollback(KEY, "1", now=world.clock.now)
    assert versions(world) == ["1", "2"]
    assert world.record(KEY).status == "successful"
