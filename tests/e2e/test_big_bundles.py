"""Big payload bundles on real processes, through both doors: `mn-deploy deployment deploy` and the official
`mn deployment deploy`. A bundle near the 64 MiB limit deploys and each agent finds its payload whole in its
working directory; one over it is refused in one line naming the limit, and nothing is deployed."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from backends.protocol.sizes import MAX_BUNDLE_BYTES
from mn_deploy.live_cli import mn_deploy_command
from tests.e2e.conftest import BUNDLES, World
from tests.polling import wait_for

pytestmark = pytest.mark.e2e

BIG = 48 * 1024 * 1024
REFUSED = "the payloads are 67,108,865 bytes in all; at most 67,108,864 bytes (64 MiB) are accepted"


def bundle(root: Path, key: str, blob: bytes) -> Path:
    """The hello example (its manifest under `key`, its agent) with `blob` beside it as model.bin."""
    manifest = json.loads((BUNDLES / "hello" / "v1.json").read_text())
    manifest["deployment"]["key"] = key
    (root / "payloads").mkdir(parents=True)
    (root / "manifest.json").write_text(json.dumps(manifest))
    (root / "payloads" / "agent.py").write_bytes((BUNDLES / "hello" / "payloads" / "agent.py").read_bytes())
    (root / "payloads" / "model.bin").write_bytes(blob)
    return root


def ours(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MN_GRPC_TARGET": world.stack.grpc_address, "MN_CLI_OUTPUT": "plain"}
    command = [*mn_deploy_command(), "deployment", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)


def official(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MN_GRPC_TARGET": world.stack.grpc_address,
        "MN_HOME": str(world.root / "mn_home"),
        "MN_CLI_OUTPUT": "plain",
        "NO_COLOR": "1",
    }
    command = [str(Path(sys.executable).with_name("mn")), "deployment", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)


def payload_digests(world: World, key: str) -> list[str]:
    """sha256 of model.bin in the working directory of each agent process of `key` running now."""
    digests = []
    for agent in world.agents():
        if agent.instance_id.startswith(f"dep_{key}_"):
            digests.append(hashlib.sha256((Path(f"/proc/{agent.pid}/cwd") / "model.bin").read_bytes()).hexdigest())
    return digests


@pytest.mark.parametrize("door", ["mn-deploy", "mn"])
def test_a_bundle_near_the_limit_deploys_and_every_agent_gets_its_payload_whole(
    world: World, tmp_path: Path, door: str
) -> None:
    blob = os.urandom(BIG)
    key = "big-" + door.replace("-", "")
    path = bundle(tmp_path / "bundle", key, blob)

    done = ours(world, "deploy", str(path)) if door == "mn-deploy" else official(world, "deploy", str(path))

    assert done.returncode == 0, done.stdout + done.stderr
    assert world.settled(key, timeout_s=60)["status"] == "successful"
    want = hashlib.sha256(blob).hexdigest()
    wait_for(lambda: payload_digests(world, key) == [want, want], 30.0, "both agents with the payload")


def test_a_bundle_over_the_limit_is_refused_in_one_line_naming_it_at_either_door(world: World, tmp_path: Path) -> None:
    agent_bytes = (BUNDLES / "hello" / "payloads" / "agent.py").stat().st_size
    path = bundle(tmp_path / "bundle", "too-big", b"\0" * (MAX_BUNDLE_BYTES + 1 - agent_bytes))  # one byte over

    mine = ours(world, "deploy", str(path))
    theirs = official(world, "deploy", str(path))

    assert (mine.returncode, mine.stdout) == (2, "")
    assert mine.stderr.strip().splitlines() == [f"error: {path}: {REFUSED}"]
    assert theirs.returncode == 2
    assert "(MN_INVALID_ARGUMENT)" in theirs.stdout  # the official CLI shows the code; the message goes to its log
    assert REFUSED in "".join(log.read_text() for log in (world.root / "mn_home").rglob("*.log"))
    assert json.loads(world.client.list_deployments())["data"] == []
