"""Signed orders on a whole dev stack: write access to Redis alone runs nothing on a worker host.

Placements are written straight into a worker's desired hash and assignments stream, as lua/assign.lua writes them:
unsigned, signed with another key, and a real order of the controller with its command changed. Each one's agent
would write a marker file first thing; the worker refuses each (one log line), nothing runs, and deployments go on
working.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from backends.protocol import wire
from backends.protocol.signing import OrderKey
from backends.redis import Keys, connect
from backends.redis.keys import namespace_from_env
from tests.e2e.conftest import World
from tests.polling import wait_for

pytestmark = pytest.mark.e2e

FAST = {"min_healthy_ms": 300}
MARKER_AGENT = "import pathlib, sys, time; pathlib.Path(sys.argv[1]).write_text('ran'); time.sleep(60)"


@pytest.fixture
def client(world: World) -> Iterator[redis.Redis]:
    """The stack's Redis, written to as an intruder with its URL would."""
    connection = connect(world.stack.redis_url)
    yield connection
    connection.close()


def forgeries(real_order: str, markers: Path) -> dict[str, str]:
    """Orders for the node `real_order` was written for, by instance id, each running a marker-writing agent."""
    forged = {}
    for kind in ("unsigned", "another-key", "altered"):
        data = json.loads(real_order)
        signature = data.pop("signature")
        data["instance_id"] = f"forged-{kind}"
        data["node"]["config"]["command"] = ["python3", "-c", MARKER_AGENT, str(markers / kind)]
        text = json.dumps(data, sort_keys=True)
        if kind == "another-key":
            text = OrderKey(b"a key the controller does not have").sign(namespace_from_env(), "", text)
        elif kind == "altered":  # the controller's own signature, over the command it ordered
            text = json.dumps({**data, "signature": signature})
        forged[data["instance_id"]] = text
    return forged


def test_placements_written_into_redis_without_the_controllers_signature_run_nothing(
    world: World, client: redis.Redis, tmp_path: Path
) -> None:
    world.deploy("hello/v1.json", **FAST)
    assert world.settled()["status"] == "successful"
    world.serving("1", "1")
    keys = Keys(namespace_from_env())
    node = next(n for n in world.stack.nodes if client.hlen(keys.node_desired(n)))
    real_order = next(iter(client.hvals(keys.node_desired(node))))
    markers = tmp_path / "markers"
    markers.mkdir()

    for instance_id, order in forgeries(real_order, markers).items():
        client.hset(keys.node_desired(node), instance_id, order)
        client.xadd(keys.node_assignments(node), {"op": wire.PLACE, "placement": order})

    log = world.stack.workdir / f"{node}.log"
    refused = re.compile(r"refused placement '(forged-[a-z-]+)': ")
    wait_for(lambda: len(set(refused.findall(log.read_text()))) == 3, what="the worker to refuse the three orders")
    world.deploy("hello/v2.json", **FAST)
    assert world.settled()["status"] == "successful"
    world.serving("2", "2")

    assert sorted(refused.findall(log.read_text())) == ["forged-altered", "forged-another-key", "forged-unsigned"]
    assert list(markers.iterdir()) == []
    assert not [a for a in world.agents() if a.instance_id.startswith("forged-")]
