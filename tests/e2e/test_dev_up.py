"""`mn-deploy dev up` as a user runs it: two lines once everything is ready, a clean stop on Ctrl-C or SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from backends.loopback import free_port
from backends.redis.server import executable
from mn_deploy.live_cli import mn_deploy_command

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_dev_up_prints_where_to_connect_and_stops_everything(
    signum: int, marker: str, mn_home: Path, tmp_path: Path
) -> None:
    if executable() is None:
        pytest.skip("redis-server is not installed")
    from mn_sdk import Client

    address = f"127.0.0.1:{free_port()}"
    up = subprocess.Popen(
        [*mn_deploy_command(), "dev", "up", "--workers", "1", "--grpc", address, "--workdir", str(tmp_path / "dev")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert up.stdout is not None
        lines = [up.stdout.readline().strip(), up.stdout.readline().strip()]
        assert re.fullmatch(r"redis: redis://127\.0\.0\.1:\d+(/0)?", lines[0]), lines
        assert lines[1] == f"grpc: {address}"
        client: Any = Client(target=address, timeout=10)
        assert json.loads(client.list_deployments())["data"] == []
        client.channel.close()

        up.send_signal(signum)
        assert up.wait(30) == 0
    finally:
        if up.poll() is None:  # the test failed half-way: still stop the stack the way a user would
            up.terminate()
            try:
                up.wait(30)
            except subprocess.TimeoutExpired:
                up.kill()
                up.wait()


def test_dev_up_without_redis_server_says_how_to_install_it(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}
    done = subprocess.run([*mn_deploy_command(), "dev", "up"], env=env, capture_output=True, text=True, timeout=60)

    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "Error: redis-server is not installed: apt-get install -y redis-server (or brew install redis)"
    ]
