"""The jobs a dev stack's deployments create, through the official `mn job status` and `mn job list`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import World

pytestmark = pytest.mark.e2e


def mn(world: World, *args: str) -> str:
    """What the official `mn job ARGS` prints, once it exited 0."""
    env = {**os.environ, "MN_GRPC_TARGET": world.stack.grpc_address, "MN_CLI_OUTPUT": "plain", "NO_COLOR": "1"}
    cli = str(Path(sys.executable).with_name("mn"))
    done = subprocess.run([cli, "job", *args], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_official_cli_shows_a_deployments_running_job(world: World) -> None:
    job_id = world.deploy("hello/v1.json", min_healthy_ms=300)["job_id"]
    world.settled()
    agents = world.serving("1", "1")

    job = json.loads(mn(world, "status", job_id))
    listed = mn(world, "list", "--running-only")

    assert (job["job_id"], job["graph_id"], job["status"]) == (job_id, "hello", "running")
    assert job["deployment"]["deployment_key"] == "hello"
    assert sorted(i["instance_id"] for i in job["instances"]) == [a.instance_id for a in agents]
    assert job_id in listed
    assert "running" in listed
