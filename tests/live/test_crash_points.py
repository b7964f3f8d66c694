"""The controller dies after each single write of each decision, in several scenarios; a new term restored from
Redis runs to quiescence, and records, versions, instance records, node orders, discovery and what the workers
run must agree: nothing leaked, nothing phantom, no version without its deployment, every agent of each key's
current job served by one healthy primary, no version or deployment number skipped. On a real redis-server,
deterministic (tests/live/crashworld.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest
import redis

from backends.redis import RedisStore
from mn_deploy_core.controller import Controller
from mn_deploy_core.errors import DeploymentError
from mn_deploy_core.records import DeploymentRecord
from tests.live.crashworld import NAMESPACE, NODES, CrashWorld, K
from tests.scripted import service_manifest

KEY = "agent-api"
AGENTS = ["worker-0", "worker-1"]
CANARY = {"canary": 1, "auto_promote": False}
Action = Callable[[CrashWorld], object]


def operator(verb: Callable[[Controller, float], DeploymentRecord]) -> Action:
    """An operator call; refused when what it needed was lost with a crash before it (the client sees the
    error)."""

    def call(world: CrashWorld) -> None:
        with contextlib.suppress(DeploymentError):
            world.call(lambda controller: verb(controller, world.now))

    return call


def deploy(image: str, **update: Any) -> Action:
    manifest = service_manifest(image, count=len(AGENTS), update={"auto_revert": True, **update})
    return operator(lambda controller, now: controller.deploy(manifest, now=now))


promote = operator(lambda controller, now: controller.promote(KEY, now=now))
fail = operator(lambda controller, now: controller.fail(KEY, now=now))
rollback = operator(lambda controller, now: controller.rollback(KEY, now=now))


def lose(agent_id: str) -> Action:
    return lambda world: world.kill(agent_id)


SCENARIOS: dict[str, list[Action]] = {
    "initial": [deploy("agent:1")],
    "rolling": [deploy("agent:1"), deploy("agent:2")],
    "canary-promote": [deploy("agent:1"), deploy("agent:2", **CANARY), promote],
    "canary-fail": [deploy("agent:1"), deploy("agent:2", **CANARY), fail],
    "unhealthy-auto-revert": [deploy("agent:1"), deploy("agent:bad")],
    "rollback": [deploy("agent:1"), deploy("agent:2"), rollback],
    "lost-after-success": [deploy("agent:1"), lose("worker-0")],
}


def play(client: redis.Redis, actions: list[Action], crash_after: int | None) -> CrashWorld:
    world = CrashWorld(client, crash_after)
    for action in actions:
        action(world)
        world.settle()
    return world


def writes_of(client: redis.Redis, actions: list[Action]) -> int:
    """How many writes the controller sends in a run without a crash."""
    world = play(client, actions, None)
    assert world.crashes == 0
    client.flushdb()
    return world.writes.count


def assert_converged(world: CrashWorld) -> None:
    client = world.client
    store = RedisStore(client, namespace=NAMESPACE)
    deployments = {r.deployment_id: r for r in store.list_deployments()}
    instances = {i.instance_id: i for i in store.list_instances()}
    desired = {i for node in NODES for i in client.hkeys(K.node_desired(node))}
    running = {i for worker in world.workers for i in worker.running}
    assert set(instances) == desired == running, "instance records, node orders and workers disagree"
    assert not client.hkeys(K.unassigned)
    assert {i.deployment_id for i in instances.values()} <= set(deployments), "an instance without its deployment"
    versions = store.list_versions(KEY)
    assert {v.deployment_id for v in versions} <= set(deployments), "a version without its deployment"
    numbers = sorted(int(d.rsplit("_", 1)[1]) for d in deployments)
    assert numbers == list(range(1, len(numbers) + 1)), "a deployment number skipped"
    assert [v.version for v in versions] == [str(n) for n in range(1, len(versions) + 1)], "a version skipped"
    assert {(r.target_version or "") for r in deployments.values()} <= {v.version for v in versions}
    assert all(not r.active or r.status == "awaiting_promotion" for r in deployments.values()), "not settled"
    registered = {i for i in client.smembers(K.service("api")) if client.exists(K.instance(i))}
    assert registered == set(instances), "discovery and instance records disagree"
    current_id = store.current_deployment_id(KEY)
    if current_id is None:
        assert not instances
        return
    current = deployments[current_id]
    primaries = [i for i in instances.values() if i.role == "primary" and i.job_id == current.current_job_id]
    assert sorted(i.agent_id for i in primaries) == AGENTS, "not every agent has one primary"
    if current.status != "failed":  # a key's first deployment may fail (no version to revert to)
        assert all(i.healthy and i.serving for i in primaries), "a primary that does not serve"


def test_a_lost_instance_is_replaced_and_its_record_says_so(real_redis: redis.Redis) -> None:
    world = play(real_redis, SCENARIOS["lost-after-success"], None)
    assert_converged(world)
    store = RedisStore(real_redis, namespace=NAMESPACE)
    assert sorted(i.instance_id for i in store.list_instances()) == [
        "dep_agent-api_1.worker-0.1",
        "dep_agent-api_1.worker-1.0",
    ]
    assert [e.type for e in store.deployment_events("dep_agent-api_1")][-3:] == [
        "deployment_instance_lost",
        "deployment_instance_placed",
        "deployment_instance_healthy",
    ]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_a_run_without_a_crash_converges(real_redis: redis.Redis, scenario: str) -> None:
    world = play(real_redis, SCENARIOS[scenario], None)
    assert world.crashes == 0
    assert world.repairs == []
    assert_converged(world)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_a_crash_after_any_write_converges(real_redis: redis.Redis, scenario: str) -> None:
    actions = SCENARIOS[scenario]
    total = writes_of(real_redis, actions)
    assert total > len(actions)
    for crash_after in range(1, total + 1):
        world = play(real_redis, actions, crash_after)
        assert world.crashes == 1, f"no crash after write {crash_after} of {total}"
        try:
            assert_converged(world)
        except AssertionError as error:
            raise AssertionError(f"{scenario}: crash after write {crash_after} of {total}: {error}") from None
        real_redis.flushdb()
