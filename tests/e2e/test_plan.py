"""`mn-deploy deployment plan` on a whole stack: with hello v1 stable, the plan of v2 names the rolling route, the
changed agents and the batch order, writes nothing to Redis, and the real deploy of v2 then does what it said.

With a recorded history, `plan --predict` simulates the deploy and the real deploy's duration then lies within the
range the prediction gave, widened for what the simulator does not see (below).

That nothing is written is shown twice: the plan runs as a Redis user that may only read (any write, or any
command beyond the reads it makes, is refused with NOPERM and would fail the command), and every key the
controller's decisions write (records, versions, events, indexes, counters, live instances) dumps the same bytes
before and after.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from backends.redis.client import connect
from backends.redis.keys import Keys, namespace_from_env
from mn_deploy.live_cli import mn_deploy_command
from sim.metrics import per_deployment
from tests.e2e.conftest import BUNDLES, World
from tests.polling import wait_for

pytestmark = pytest.mark.e2e

V2 = str(BUNDLES / "hello" / "v2.json")


def reader_url(world: World) -> str:
    """The stack's Redis as a user allowed the plan's reads and nothing else, on every key of the namespace."""
    admin = connect(world.stack.redis_url)
    password = uuid.uuid4().hex
    prefix = Keys(namespace_from_env()).prefix
    rules = ["reset", "on", "resetchannels", f"%R~{prefix}*", "+ping", "+get", "+mget", "+smembers", "+hgetall"]
    admin.execute_command("ACL", "SETUSER", "planner", *rules, f">{password}")
    admin.close()
    url = urlsplit(world.stack.redis_url)
    reader = urlunsplit(url._replace(netloc=f"planner:{password}@{url.hostname}:{url.port}"))
    probe = connect(reader)
    with pytest.raises(redis.exceptions.NoPermissionError):  # the user really may not write
        probe.set(f"{prefix}deployments:last_number", "0")
    probe.close()
    return reader


def decided_keys(client: redis.Redis) -> dict[str, Any]:
    """DUMP of every key a controller decision writes: under `deployment`, the counters and the live instances."""
    keys = Keys(namespace_from_env())
    names = sorted({*client.scan_iter(match=f"{keys.prefix}deployment*"), keys.live_instances})
    assert any(":version:" in name for name in names)
    return {name: client.dump(name) for name in names}


def plan(world: World, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`mn-deploy deployment plan` as a user runs it, piped (plain lines), its Redis in MN_REDIS_URL."""
    env = {**os.environ, "MN_REDIS_URL": url, "MN_CLI_OUTPUT": "plain"}
    command = [*mn_deploy_command(), "deployment", "plan", V2, *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)


def placed_agents(record: dict[str, Any]) -> list[str]:
    return [e["agent_id"] for e in record["events"] if e["type"] == "deployment_instance_placed"]


def test_plan_of_v2_names_the_rolling_batches_writes_nothing_and_the_deploy_follows_it(world: World) -> None:
    world.deploy("hello/v1.json")
    assert world.settled()["status"] == "successful"
    world.serving("1", "1")
    url = reader_url(world)
    admin = connect(world.stack.redis_url)
    before = decided_keys(admin)

    shown = plan(world, url)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "Route: rolling (agent level)" in lines
    assert "Deployment: dep_hello_2 (new)" in lines
    assert "Version: 2" in lines
    assert "Changed agents: web-0, web-1 (2)" in lines
    assert "Placed at once: web-0 (primary)" in lines
    assert "Step: 1 | primary | 1/2 | web-0 | -" in lines
    assert "Step: 1 | primary | 2/2 | web-1 | successful" in lines

    as_json = plan(world, url, "--json")
    assert as_json.returncode == 0, as_json.stderr
    planned = json.loads(as_json.stdout)
    assert (planned["route"], planned["deployment_id"], planned["version"]) == ("rolling", "dep_hello_2", "2")
    assert planned["steps"][0]["batches"] == [["web-0"], ["web-1"]]
    assert planned["policy"]["max_parallel"] == 1

    assert decided_keys(admin) == before
    admin.close()

    deployed = world.deploy("hello/v2.json")["deployment"]
    assert (deployed["deployment_id"], deployed["target_version"]) == (planned["deployment_id"], "2")
    assert placed_agents(deployed) == [p["agent_id"] for p in planned["placed_at_once"]] == ["web-0"]
    done = wait_for(lambda: (d := world.settled())["status"] == "successful" and d, what="v2 to succeed")
    assert placed_agents(done) == [agent for batch in planned["steps"][0]["batches"] for agent in batch]
    assert done["changed_agent_ids"] == planned["changed_agent_ids"]


LIVE_SLACK = 0.5
"""How far outside the predicted runs' range one live run may land: it is one draw, and the live world adds what no
trace holds (a worker's own retries, Redis round trips, two cores shared with other tests slowing process starts)."""
LIVE_SLACK_MS = 2000.0


def test_predict_from_recorded_history_brackets_the_real_deploy(world: World) -> None:
    """hello v1, v2, then v1 again (version 3, v1's spec) recorded: a prediction of v2 (version 4) from that history
    has shares summing to 1 and a positive duration, and the real deploy of v2 then takes a time within the range of
    the predicted runs, widened by LIVE_SLACK below and above and LIVE_SLACK_MS above."""
    for bundle in ("hello/v1.json", "hello/v2.json", "hello/v1.json"):
        world.deploy(bundle)
        assert world.settled()["status"] == "successful"
    world.serving("3", "3")

    shown = plan(world, world.stack.redis_url, "--predict", "20", "--json", "--workers", "1")
    assert shown.returncode == 0, shown.stderr
    prediction = json.loads(shown.stdout)["prediction"]
    assert (prediction["version"], prediction["current_version"], prediction["runs"]) == ("4", "3", 20)
    assert sum(share["share"] for share in prediction["outcomes"].values()) == pytest.approx(1.0)
    assert prediction["outcomes"]["successful"]["share"] == 1.0
    assert prediction["errors"] == 0
    assert prediction["instances_seen"] == 6  # v1's spec ran in versions 1 and 3, v2's in 2: two instances each
    median = prediction["duration_ms"]["median"]
    assert median["value"] > 0 and median["low"] <= median["value"] <= median["high"]
    shortest, longest = prediction["duration_ms"]["range"]

    deployed = world.deploy("hello/v2.json")["deployment"]
    done = wait_for(lambda: (d := world.settled())["status"] == "successful" and d, what="v2 to succeed")
    assert done["deployment_id"] == deployed["deployment_id"]
    real = per_deployment([done])[0]["duration_ms"]
    assert (1 - LIVE_SLACK) * shortest <= real <= (1 + LIVE_SLACK) * longest + LIVE_SLACK_MS, (real, prediction)
