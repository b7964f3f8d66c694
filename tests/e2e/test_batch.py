"""Batch jobs (R3b) on real processes: the example bundle examples/bundles/batch-hello, run by real workers.

Its agent appends its pid to `$MN_BATCH_OUT/<instance id>.log` when it starts and finishes (exit 0) once no
`$MN_BATCH_OUT/hold-<version>` file is there; the test deploys a copy of the manifests that declares MN_BATCH_OUT
in `config.env` (the `batch` fixture).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from backends.redis import Keys, RedisStore, connect
from backends.redis.keys import namespace_from_env
from mn_deploy_core.records import InstanceRecord
from tests.e2e.conftest import World
from tests.polling import wait_for

pytestmark = pytest.mark.e2e

KEY = "batch-hello"
AGENTS = ["job-0", "job-1"]
# The manifests restart an agent that exits non-zero after 500 ms; a completed one must never come back.
NO_RESTART_WINDOW_S = 1.5


def starts(batch_out: Path) -> dict[str, list[int]]:
    """The pids each instance's agent was started with, by instance id."""
    return {
        log.stem: [int(line.split()[0]) for line in log.read_text().splitlines()] for log in batch_out.glob("*.log")
    }


def instances(world: World, version: str) -> list[InstanceRecord]:
    store = RedisStore(connect(world.stack.redis_url))
    return [i for i in store.list_instances() if i.deployment_key == KEY and i.version == version]


def completed(world: World, version: str) -> list[InstanceRecord] | None:
    found = instances(world, version)
    return found if len(found) == len(AGENTS) and all(i.outcome == "completed" for i in found) else None


def holds(condition: Callable[[], bool], for_s: float, what: str) -> None:
    """Observe that `condition` stays true for `for_s` (a check that nothing happens, not a synchronisation)."""
    deadline = time.monotonic() + for_s
    while time.monotonic() < deadline:
        assert condition(), what
        time.sleep(0.05)


def test_a_batch_job_runs_once_to_completion_and_a_redeploy_reruns_beside_it(batch: World, batch_out: Path) -> None:
    world = batch
    (batch_out / "hold-1").touch()  # v1's agents keep running until the test lets them finish

    first = world.deploy(f"{KEY}/v1.json")

    # Successful at once: a batch deploy is not health gated.
    assert (first["status"], first["deployment"]["mode"]) == ("successful", "initial")
    assert [e["type"] for e in first["deployment"]["events"]] == ["deployment_created", "deployment_successful"]
    v1_agents = wait_for(
        lambda: len(a := [x for x in world.agents() if x.version == "1"]) == len(AGENTS) and a, what="v1's agents"
    )
    assert sorted(a.agent_id for a in v1_agents) == AGENTS
    assert world.get(KEY)["status"] == "successful", "successful while its agents still run"

    # A later deploy of the key is a rerun: a new version and a new job, beside the first.
    second = world.deploy(f"{KEY}/v2.json")

    record = second["deployment"]  # (as in MirrorNeuron, a rerun's answer has no top-level `status`)
    assert (record["status"], record["mode"]) == ("version_recorded", "rerun")
    assert record["description"] == "Batch version recorded as rerun"
    assert (record["target_version"], record["target_job_id"]) == ("2", second["job_id"])
    assert second["job_id"] != first["job_id"]
    assert [e["type"] for e in record["events"]] == ["deployment_version_recorded"]
    assert [v["version"] for v in world.get(KEY)["versions"]] == ["1", "2"]

    v2 = wait_for(lambda: completed(world, "2"), what="v2's instances to complete")
    assert sorted(i.job_id for i in v2) == [second["job_id"]] * len(AGENTS)
    running = [a for a in world.agents() if a.version == "1"]
    assert [a.pid for a in running] == [a.pid for a in v1_agents], "v1's agents ran on beside v2's, untouched"
    assert all(i.stopped_ms is None and i.completed_ms is None for i in instances(world, "1"))

    (batch_out / "hold-1").unlink()
    v1 = wait_for(lambda: completed(world, "1"), what="v1's instances to complete")
    wait_for(lambda: not world.agents(), what="every agent process to end")

    # Completed, not failed, not restarted, not rescheduled: one instance and one process per agent and version.
    every = v1 + v2
    assert sorted((i.version, i.agent_id) for i in every) == [(v, a) for v in ("1", "2") for a in AGENTS]
    for instance in every:
        assert not instance.failed and instance.unhealthy_ms is None and instance.stopped_ms is None
        assert instance.restart_ms == () and instance.running_ms is not None
    assert {i.instance_id for i in every} == set(starts(batch_out))
    assert {i.instance_id: [a.pid for a in v1_agents if a.instance_id == i.instance_id] for i in v1} == {
        i: pids for i, pids in starts(batch_out).items() if i in {r.instance_id for r in v1}
    }
    holds(
        lambda: all(len(pids) == 1 for pids in starts(batch_out).values()) and not world.agents(),
        NO_RESTART_WINDOW_S,
        "a completed agent was started again",
    )
    assert [(i.instance_id, i.outcome, i.restart_ms) for i in instances(world, "1") + instances(world, "2")] == [
        (i.instance_id, "completed", ()) for i in every
    ]

    # Neither deployment changed: the first stays successful, the rerun stays recorded.
    assert world.get(first["deployment"]["deployment_id"])["status"] == "successful"
    latest = world.get(KEY)
    assert (latest["deployment_id"], latest["status"]) == (record["deployment_id"], "version_recorded")


def test_a_completed_batch_agent_is_not_run_again_by_a_restarted_worker_nor_failed_with_a_lost_one(
    batch: World, batch_out: Path
) -> None:
    """A completed instance leaves its node's desired state: the worker of node-2, killed and started again at once
    (within the node TTL, so it takes up what its node still holds), does not run it again; node-1, lost for good,
    does not take its completed instance down as failed, and nothing is rescheduled."""
    world = batch
    world.deploy(f"{KEY}/v1.json")
    v1 = wait_for(lambda: completed(world, "1"), what="v1's instances to complete")
    first_starts = starts(batch_out)
    assert sorted(len(pids) for pids in first_starts.values()) == [1, 1]

    restarted = world.stack.workers["node-2"]
    restarted.kill()
    restarted.wait()
    world.stack.workers["node-2"] = world.stack.start_worker("node-2")
    lost = world.stack.workers.pop("node-1")
    lost.kill()
    lost.wait()
    client = connect(world.stack.redis_url)
    keys = Keys(namespace_from_env())
    wait_for(lambda: "node-1" not in client.smembers(keys.nodes), what="the controller to drop node-1")

    # A rerun now goes to node-2 alone, after its restarted worker took up what its node holds.
    rerun = world.deploy(f"{KEY}/v2.json")["deployment"]
    assert rerun["status"] == "version_recorded"
    wait_for(lambda: completed(world, "2"), what="the rerun's instances to complete on node-2")

    assert {i: pids for i, pids in starts(batch_out).items() if i in first_starts} == first_starts, "v1 ran again"
    after = instances(world, "1")
    assert [(i.instance_id, i.outcome, i.failed, i.restart_ms) for i in after] == [
        (i.instance_id, "completed", False, ()) for i in v1
    ]
    assert [e["type"] for e in world.get(rerun["deployment_id"])["events"]] == ["deployment_version_recorded"]
    assert world.get(f"dep_{KEY}_1")["status"] == "successful"
