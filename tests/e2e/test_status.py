"""`mn-deploy deployment status`'s instances on a real stack (two workers): the command, run as a user runs it,
lists every instance with the node and the live process that runs it, and a restart shows."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from typing import Any

import pytest

from mn_deploy.live_cli import mn_deploy_command
from tests.e2e.conftest import World, _environment, running
from tests.polling import wait_for

pytestmark = pytest.mark.e2e

FAST = {"min_healthy_ms": 300}


def status(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MN_GRPC_TARGET": world.stack.grpc_address, "MN_CLI_OUTPUT": "plain"}
    command = [*mn_deploy_command(), "deployment", "status", "hello", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=True)


def rows(world: World) -> dict[str, dict[str, Any]]:
    """The instance rows of `status hello --json`, by agent."""
    reply = json.loads(status(world, "--json").stdout)
    assert reply["instances_total"] == len(reply["instances"])
    return {row["agent_id"]: row for row in reply["instances"]}


def settled_rows(world: World, restarts: dict[str, int]) -> dict[str, dict[str, Any]]:
    """The rows once every agent is healthy again with these restarts, each naming a running process."""

    def look() -> dict[str, dict[str, Any]] | None:
        found = rows(world)
        ready = {agent: (row["state"], row["restarts"]) for agent, row in found.items()}
        wanted = {agent: ("healthy", count) for agent, count in restarts.items()}
        return found if ready == wanted and all(row["pid"] and running(row["pid"]) for row in found.values()) else None

    return dict(wait_for(look, what=f"every instance healthy with restarts {restarts}"))


def test_status_lists_every_instance_with_its_node_live_pid_and_port_and_counts_a_restart(world: World) -> None:
    world.deploy("hello/v1.json", **FAST)
    assert world.settled()["status"] == "successful"
    agents = {a.agent_id: a for a in world.serving("1", "1")}

    before = settled_rows(world, {"web-0": 0, "web-1": 0})

    assert {row["node"] for row in before.values()} <= {"node-1", "node-2"}
    for agent, row in before.items():
        assert (row["version"], row["role"]) == ("1", "primary")
        assert row["pid"] == agents[agent].pid, "the pid is the agent process's"
        assert row["port"] == int(_environment(row["pid"])["PORT"]), "the port the agent was given"
        assert row["instance_id"] == agents[agent].instance_id
    plain = [line for line in status(world).stdout.splitlines() if line.startswith("Instance")]
    assert len(plain) == 3
    for line, (agent, row) in zip(plain[:2], sorted(before.items()), strict=True):
        cells = f"{agent} | 1 | primary | {row['node']} | {row['pid']} | {row['port']} | healthy | 0"
        assert re.fullmatch(rf"Instance: {re.escape(cells)} \| [0-9hms ]+", line)
    assert plain[2:] == ["Instances: 2 instances"]

    os.kill(before["web-0"]["pid"], signal.SIGKILL)
    after = settled_rows(world, {"web-0": 1, "web-1": 0})

    assert after["web-0"]["pid"] != before["web-0"]["pid"]
    assert after["web-0"]["instance_id"] == before["web-0"]["instance_id"], "restarted in place, not replaced"
    assert after["web-0"]["node"] == before["web-0"]["node"]
    assert after["web-1"] == before["web-1"], "the other instance is untouched"
