"""The leader SIGKILLed at a random moment 0-40 ms into a deploy call, 20 times in a row on one stack: each time a
new controller takes over and the world converges, with records, versions, instance records, node orders and
agent processes in agreement (nothing leaked, nothing phantom, no version without its deployment)."""

from __future__ import annotations

import contextlib
import random
import threading

import grpc
import pytest

from backends.redis import Keys, RedisStore, connect
from backends.redis.keys import namespace_from_env
from tests.e2e.conftest import World, wait_for

pytestmark = pytest.mark.e2e

TRIALS = 20
KILL_WINDOW_S = 0.040
BUNDLES = ("hello/v1.json", "hello/v2.json")


def deploy_quietly(world: World, bundle: str) -> None:
    """A deploy whose controller may die under it: the client sees UNAVAILABLE, or a reply, or neither."""
    with contextlib.suppress(grpc.RpcError):
        world.deploy(bundle, min_healthy_ms=200)


def divergence(world: World) -> str:
    """What keeps the world from having converged ("" once it has): an active deployment, or instance records,
    nodes' orders and agent processes that do not name the same instances."""
    client = connect(world.stack.redis_url)
    try:
        keys = Keys(namespace_from_env())
        store = RedisStore(client)
        active = [r.deployment_id for r in store.list_deployments() if r.active]
        records = {i.instance_id for i in store.list_instances()}
        desired = {i for node in world.stack.nodes for i in client.hkeys(keys.node_desired(node))}
        processes = {a.instance_id for a in world.agents()}
        unassigned = client.hkeys(keys.unassigned)
    finally:
        client.close()
    if active or not records == desired == processes or unassigned:
        sets = {"records": records, "orders": desired, "processes": processes, "unassigned": set(unassigned)}
        return f"active {active}; " + "; ".join(f"{name} {sorted(ids)}" for name, ids in sets.items())
    return ""


def test_a_leader_killed_at_random_moments_of_deploys_converges_every_time(world: World) -> None:
    chance = random.Random(13)
    for trial in range(TRIALS):
        (leader,) = [c for c in world.stack.controllers if c.wait(0) is None]
        call = threading.Thread(target=deploy_quietly, args=(world, BUNDLES[trial % 2]))
        call.start()
        threading.Event().wait(chance.uniform(0, KILL_WINDOW_S))  # the fault's moment, not a synchronisation
        leader.kill()
        leader.wait()
        call.join()
        world.stack.start_controller()
        world.stack.wait_ready(20.0)
        what = f"convergence after kill {trial + 1}"
        wait_for(lambda: not divergence(world), 30.0, lambda what=what: f"{what}: {divergence(world)}")

        client = connect(world.stack.redis_url)
        store = RedisStore(client)
        deployments = {r.deployment_id: r for r in store.list_deployments()}
        versions = store.list_versions("hello")
        instances = store.list_instances()
        current_id = store.current_deployment_id("hello")
        client.close()
        assert {v.deployment_id for v in versions} <= set(deployments), f"trial {trial}: a version without its record"
        agents = world.agents()
        assert len({a.agent_id for a in agents}) == len(agents), f"trial {trial}: two processes for one agent"
        if current_id is not None and deployments[current_id].status == "successful":
            job = deployments[current_id].current_job_id
            primaries = [i for i in instances if i.job_id == job and i.role == "primary"]
            assert len(primaries) == len(agents) == 2, f"trial {trial}: {primaries} for {agents}"
            assert all(i.healthy and i.serving for i in primaries), f"trial {trial}: a phantom primary"
