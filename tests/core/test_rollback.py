"""R11 rollback while a deployment of the key is active: "the current one" is the version it is rolling out.

Reference: SEMANTICS.md §10, which amends reference/mirrorneuron-deployments.md §9 (there the current version is
the last one that finished, so rolling back mid-rollout finds no target; see §18 scenario 29).
"""

from __future__ import annotations

import pytest

from mn_deploy_core.errors import NoRollbackTargetError
from mn_deploy_core.manifest import load_manifest
from mn_deploy_core.records import DeploymentRecord
from tests.scripted import World, service_manifest

KEY = "agent-api"


def rolling_world() -> tuple[World, DeploymentRecord]:
    """Version 1 stable; version 2 rolling: worker-0 healthy, worker-1 placed, worker-2 still at version 1."""
    world = World.settled(service_manifest())
    rolling = world.deploy(service_manifest("agent:2"))
    world.bring_up()
    world.advance(world.clock.now + 1000)
    return world, rolling


def digest_of(world: World, version: str) -> str:
    stored = world.store.load_version(KEY, version)
    assert stored is not None
    return load_manifest(stored.manifest).agents["worker-0"].digest


def test_r11_rollback_mid_rollout_goes_back_to_the_last_stable_version() -> None:
    world, rolling = rolling_world()

    record = world.controller.rollback(KEY, reason="v2 is slow", now=world.clock.now)

    assert record.rollback == {"from_version": "2", "to_version": "1", "reason": "v2 is slow"}
    assert (record.target_version, record.mode) == ("3", "agent_level")
    assert record.changed_agent_ids == ("worker-0", "worker-1")  # the agents v2 reached
    assert world.record(rolling.deployment_id).status == "cancelled"
    v3 = world.store.load_version(KEY, "3")
    assert v3 is not None and v3.created_by == "rollback" and not v3.stable
    assert v3.spec_digest == world.store.load_version(KEY, "1").spec_digest
    world.converge()
    done = world.record(KEY)
    assert (done.status, done.current_version, done.stable_version) == ("successful", "3", "3")
    assert {v.spec_digest for v in world.controller.instances(KEY)} == {digest_of(world, "1")}


def test_r11_rollback_mid_rollout_to_a_given_version_is_from_the_version_rolling_out() -> None:
    world = World.settled(service_manifest())
    world.deploy(service_manifest("agent:2"))
    world.converge()
    world.deploy(service_manifest("agent:3"))

    record = world.controller.rollback(KEY, version="1", now=world.clock.now)

    assert record.rollback == {"from_version": "3", "to_version": "1", "reason": None}
    assert record.target_version == "4"


def test_r11_rollback_during_a_rollback_goes_to_the_stable_version_before_it() -> None:
    world = World.settled(service_manifest())
    world.deploy(service_manifest("agent:2"))
    world.converge()
    world.controller.rollback(KEY, now=world.clock.now)  # v3, a copy of v1, rolling

    record = world.controller.rollback(KEY, now=world.clock.now)

    assert record.rollback == {"from_version": "3", "to_version": "2", "reason": None}
    world.converge()
    assert {v.spec_digest for v in world.controller.instances(KEY)} == {digest_of(world, "2")}


def test_r11_rollback_during_the_first_rollout_has_no_target() -> None:
    world = World()
    first = world.deploy(service_manifest())

    with pytest.raises(NoRollbackTargetError) as info:
        world.controller.rollback(KEY, now=world.clock.now)

    assert info.value.message == f"no rollback target found for deployment {KEY}"
    assert world.record(KEY).to_json() == first.to_json()
    assert [v.version for v in world.controller.versions(KEY)] == ["1"]
