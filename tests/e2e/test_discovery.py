"""Service discovery of a whole dev stack, seen as a client sees it: the official `mn service list` and
`mn service resolve` (the controller's ClusterService) and `mn-deploy service list` (Redis), with workers renewing
entries on a short registry TTL, so that an entry nobody renews is gone within a second."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backends.redis.client import connect
from backends.redis.registry import Entry, RedisRegistry, discoverable
from mn_deploy.live_cli import mn_deploy_command
from tests.e2e.conftest import World
from tests.polling import wait_for

pytestmark = pytest.mark.e2e

TTL_MS = 800
ADVERTISED = "127.0.0.1"
FAST = {"min_healthy_ms": 300}


@pytest.fixture(autouse=True)
def worker_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every worker the stack starts renews entries on TTL_MS and advertises ADVERTISED (`--registry-ttl-ms` and
    `--advertise-host` read these variables)."""
    monkeypatch.setenv("MN_REGISTRY_TTL_MS", str(TTL_MS))
    monkeypatch.setenv("MN_ADVERTISE_HOST", ADVERTISED)


@pytest.fixture
def registry(world: World) -> Iterator[RedisRegistry]:
    """The stack's discovery, read straight from Redis: fast enough to sample between two renewals."""
    client = connect(world.stack.redis_url)
    yield RedisRegistry(client)
    client.close()


def mn(world: World, *args: str) -> list[dict[str, Any]]:
    """The services the official CLI prints for `mn service ARGS`."""
    env = {**os.environ, "MN_GRPC_TARGET": world.stack.grpc_address, "MN_CLI_OUTPUT": "plain", "NO_COLOR": "1"}
    cli = str(Path(sys.executable).with_name("mn"))
    done = subprocess.run([cli, "service", *args], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return list(json.loads(done.stdout)["services"])


def mn_deploy(world: World, *args: str) -> list[dict[str, Any]]:
    """The entries `mn-deploy service ARGS --json` prints."""
    command = [*mn_deploy_command(), "service", *args, "--redis", world.stack.redis_url, "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return list(json.loads(done.stdout))


def versions(services: list[dict[str, Any]]) -> list[str]:
    return sorted(s["deployment_version"] for s in services)


def visible(registry: RedisRegistry) -> list[Entry]:
    return discoverable(registry.entries("hello"))


def test_a_primary_stays_discoverable_over_several_ttls(world: World, registry: RedisRegistry) -> None:
    world.deploy("hello/v1.json", **FAST)
    world.settled()
    primaries = wait_for(lambda: len(found := visible(registry)) == 2 and found, what="both primaries discoverable")
    ids = sorted(e["instance_id"] for e in primaries)

    end = time.monotonic() + 5 * TTL_MS / 1000
    while time.monotonic() < end:  # every sample, between renewals as well as after them
        assert sorted(e["instance_id"] for e in visible(registry)) == ids

    listed, resolved = mn(world, "list"), mn(world, "resolve", "hello")
    assert sorted(s["instance_id"] for s in listed) == ids
    assert sorted(s["instance_id"] for s in resolved) == ids
    assert all(s["status"] == "passing" and s["address"] == ADVERTISED and s["port"] for s in resolved)
    assert [(e["instance_id"], e["host"]) for e in mn_deploy(world, "list")] == [(i, ADVERTISED) for i in ids]


def test_a_canary_is_never_discoverable_until_promoted(world: World, registry: RedisRegistry) -> None:
    world.deploy("hello/v1.json", **FAST)
    world.settled()
    wait_for(lambda: len(visible(registry)) == 2, what="both primaries discoverable")

    world.deploy("hello/v2.json", **FAST, strategy="canary", canary=1)

    def canary_passing() -> bool:
        assert versions(visible(registry)) == ["1", "1"], "a lookup returned the canary"
        entries = registry.entries("hello")
        return any(e["deployment_role"] == "canary" and e["passing"] == "1" for e in entries)

    wait_for(canary_passing, what="the canary registered and passing its checks")
    assert world.settled()["status"] == "awaiting_promotion"
    end = time.monotonic() + 3 * TTL_MS / 1000
    while time.monotonic() < end:
        canary_passing()
    assert versions(mn(world, "list")) == ["1", "1"]
    assert versions(mn(world, "resolve", "hello", "--all")) == ["1", "1"]
    assert versions(mn_deploy(world, "list")) == ["1", "1"]
    assert versions(mn_deploy(world, "list", "--all")) == ["1", "1", "2"]

    world.client.promote_deployment("hello")

    assert world.settled()["status"] == "successful"
    wait_for(lambda: versions(visible(registry)) == ["2", "2"], what="the promoted version discoverable")
    assert versions(mn(world, "resolve", "hello")) == ["2", "2"]


def test_a_stopped_instances_entry_is_gone_within_a_second(world: World, registry: RedisRegistry) -> None:
    world.deploy("hello/v1.json", **FAST)
    world.settled()
    entries = wait_for(lambda: len(found := visible(registry)) == 2 and found, what="both primaries discoverable")
    lost = next(e for e in entries if e["node"] == "node-2")

    world.stack.workers["node-2"].kill()  # nobody deregisters its instance: only the TTL ends the entry

    wait_for(lambda: lost["instance_id"] not in ids(registry), 1.0, "the killed worker's entry to be gone")
    world.stack.workers["node-2"].wait()
    assert lost["instance_id"] not in [e["instance_id"] for e in mn_deploy(world, "list", "--all")]


def ids(registry: RedisRegistry) -> list[str]:
    return [e["instance_id"] for e in registry.entries("hello")]
