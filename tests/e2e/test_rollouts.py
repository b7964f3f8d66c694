"""Rollouts of the example bundles through the official SDK, run by real workers."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import World

pytestmark = pytest.mark.e2e

FAST = {"min_healthy_ms": 300}


def test_a_rolling_update_replaces_every_agent(world: World) -> None:
    assert world.deploy("hello/v1.json", **FAST)["status"] == "running"
    assert world.settled()["status"] == "successful"
    world.serving("1", "1")

    world.deploy("hello/v2.json", **FAST)
    done = world.settled()

    assert done["status"] == "successful"
    assert (done["stable_version"], done["counters"]["placed"]) == ("2", 2)
    assert [v["version"] for v in done["versions"]] == ["1", "2"]
    world.serving("2", "2")


def test_a_canary_waits_for_promotion_beside_the_old_agents(world: World) -> None:
    world.deploy("hello/v1.json", **FAST)
    world.settled()

    world.deploy("hello/v2.json", **FAST, strategy="canary", canary=1)
    waiting = world.settled()
    assert waiting["status"] == "awaiting_promotion"
    agents = world.agents()
    assert sorted(a.version for a in agents) == ["1", "1", "2"], "the canary runs beside both old agents"

    world.client.promote_deployment("hello")

    assert world.settled()["status"] == "successful"
    world.serving("2", "2")


def test_a_broken_version_fails_and_is_reverted_to_the_stable_one(world: World) -> None:
    world.deploy("hello/v1.json", **FAST)
    world.settled()

    failed = world.deploy("hello/v2-broken.json", **FAST, healthy_deadline_ms=1500)["deployment"]["deployment_id"]
    record = world.settled(failed, timeout_s=30.0)

    assert record["status"] == "failed"
    assert record["description"] == "Failed due to unhealthy instances - rolling back to version 1"
    revert = world.settled()
    assert revert["status"] == "successful"
    assert (revert["target_version"], revert["rollback"]["to_version"]) == ("3", "1")
    world.serving("1", "3")  # the agent v2 had replaced runs v1's spec again as version 3; the other never changed
