"""Processes die: the controller mid-rollout (SIGKILL, then a new one takes over), a worker with its agents."""

from __future__ import annotations

import threading

import grpc
import pytest

from mn_deploy.deployment_view import RoleProgress, role_progress
from tests.e2e.conftest import NODE_TTL_MS, World, wait_for

pytestmark = pytest.mark.e2e


def test_a_controller_killed_mid_rollout_is_replaced_and_the_rollout_completes(world: World) -> None:
    world.deploy("hello/v1.json", min_healthy_ms=300)
    world.settled()
    world.deploy("hello/v2.json", min_healthy_ms=1500)
    wait_for(lambda: world.get()["counters"]["healthy"] >= 1, what="the first v2 agent")  # mid-rollout
    (killed,) = world.stack.controllers

    killed.kill()
    killed.wait()
    world.stack.start_controller()
    world.stack.wait_ready(10.0)  # it waits out the dead one's lease first
    done = world.settled()

    assert done["status"] == "successful"
    assert done["counters"]["placed"] == 2, "no agent was placed twice"
    assert [v["version"] for v in done["versions"]] == ["1", "2"], "no version skipped or reused"
    agents = world.serving("2", "2")
    assert all(a.instance_id.startswith(done["deployment_id"]) for a in agents)


def test_the_agents_of_a_killed_worker_are_replaced_on_a_live_one(world: World) -> None:
    world.deploy("hello/v1.json", min_healthy_ms=2500, healthy_deadline_ms=8000)
    placed = wait_for(lambda: len(a := world.agents()) == 2 and a, what="an agent on each node")
    lost = world.stack.workers["node-2"]
    assert {a.parent for a in placed} == {world.stack.workers["node-1"].pid, lost.pid}

    lost.kill()
    lost.wait()
    done = world.settled()

    assert done["status"] == "successful"
    assert (done["counters"]["placed"], done["counters"]["unhealthy"]) == (3, 1)
    survivors = world.serving("1", "1")
    assert {a.parent for a in survivors} == {world.stack.workers["node-1"].pid}


@pytest.mark.parametrize("how", ["killed", "stopped"])
def test_agents_a_worker_takes_with_it_after_success_are_replaced_and_the_record_says_so(
    world: World, how: str
) -> None:
    """R16: no rollout tends them any more, yet every agent runs again, and the record tells of the loss and of
    the replacement's verdict (status reads it)."""
    world.deploy("hello/v1.json", min_healthy_ms=300)
    done = world.settled()
    assert done["status"] == "successful"
    survivor, lost = world.stack.workers["node-1"], world.stack.workers["node-2"]
    (gone,) = [a for a in world.agents() if a.parent == lost.pid]

    if how == "killed":
        lost.kill()
    else:
        lost.terminate(grace_s=5.0)
    lost.wait()

    agents = world.serving("1", "1")
    assert {a.parent for a in agents} == {survivor.pid}
    record = wait_for(
        lambda: (r := world.get())["events"][-1]["type"] == "deployment_instance_healthy" and r,
        what="the replacement's verdict in the record",
    )
    lost_event, placed, healthy = record["events"][-3:]
    assert (lost_event["type"], lost_event["instance_id"]) == ("deployment_instance_lost", gone.instance_id)
    assert placed["instance_id"] == healthy["instance_id"] == lost_event["replacement_id"]
    assert healthy["instance_id"] in {a.instance_id for a in agents}
    assert (record["status"], record["reschedules"]) == ("successful", {gone.agent_id: 1})


def progress(world: World) -> list[RoleProgress] | None:
    """What `status` shows of the key's record; None while no controller serves (a new one is taking over)."""
    try:
        return role_progress(world.get())
    except grpc.RpcError as error:
        if error.code() is grpc.StatusCode.UNAVAILABLE:
            return None
        raise


def test_a_redis_outage_longer_than_the_node_ttl_ends_with_every_agent_running_and_status_true(world: World) -> None:
    """Heartbeats and the lease expire while Redis is down (its append-only file keeps the rest): a controller
    leads again, and whether it finds the nodes lost (their agents replaced, R16) or beating again, every agent runs
    and the record's progress says so."""
    world.deploy("hello/v1.json", min_healthy_ms=300)
    assert world.settled()["status"] == "successful"
    world.serving("1", "1")
    server = world.stack.redis_server

    server.kill()
    threading.Event().wait(3 * NODE_TTL_MS / 1000)  # the outage itself, not a synchronisation
    server.start()

    wait_for(
        lambda: progress(world) == [RoleProgress("primary", 2, 2, 2)],
        30.0,
        "the record to show both agents healthy",
    )
    agents = world.serving("1", "1")
    assert {a.parent for a in agents} <= {w.pid for w in world.stack.workers.values()}
    assert world.get()["status"] == "successful"
