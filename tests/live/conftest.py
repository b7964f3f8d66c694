"""A JobService on a loopback port over the scripted world, the official SDK client pointed at it, and an address
held as a paused leader holds it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from backends.live.controller import serve
from backends.live.controller.bundles import MemoryBundleStore
from backends.live.controller.runtime import RedisRuntime
from backends.loopback import free_port
from backends.protocol.signing import OrderKey
from mn_deploy_core.ports import Fact, FactKind
from tests.scripted import World

ORDER_KEY = OrderKey(b"a test order key, 32 chars or more")
"""What the live tests' controllers sign orders with and their workers verify them with."""


def order_key_file(directory: Path) -> Path:
    """ORDER_KEY in a file of `directory` only its owner can read, for MN_ORDER_KEY_FILE."""
    path = directory / "order-key"
    path.write_bytes(ORDER_KEY.secret)
    path.chmod(0o600)
    return path


@dataclass
class Api:
    """The server's world, the lock it shares with the test (standing in for the driver) and a client."""

    world: World
    lock: threading.Lock
    bundles: MemoryBundleStore
    target: str
    client: Any

    def settle(self) -> None:
        """As a driver would: every placed instance comes up healthy and time runs until nothing is pending."""
        with self.lock:
            self.world.converge()


@pytest.fixture
def api(mn_home: Path) -> Iterator[Api]:
    from mn_sdk import Client  # imported once MN_HOME is set: the SDK opens its log file at import

    world, lock, bundles = World(), threading.Lock(), MemoryBundleStore()
    target = f"127.0.0.1:{free_port()}"
    server = serve(world.controller, target, lock=lock, bundles=bundles, clock=world.clock)
    client = Client(target=target, timeout=10)
    yield Api(world, lock, bundles, target, client)
    client.channel.close()
    server.stop(None).wait()


@contextmanager
def held(address: str) -> Iterator[socket.socket]:
    """A socket listening on `address` and answering nothing, as a paused leader's does."""
    host, _, port = address.rpartition(":")
    with socket.socket() as old_leader:
        old_leader.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        old_leader.bind((host, int(port)))
        old_leader.listen()
        yield old_leader


# ---- a worker's runtime and the facts it reports (tests/live/test_worker.py, test_discovery.py) ----------------

WORKER_NAMESPACE = "mn_test"
DEADLINE_S = 15.0
"""How long a real worker and agent get to do what a test waits for."""


class Facts:
    """Facts as the controller reads them (and acknowledges), kept in arrival order."""

    def __init__(self, runtime: RedisRuntime) -> None:
        self.runtime = runtime
        self.seen: list[Fact] = []

    def until(self, expected: Fact, *, start: int = 0, timeout_s: float = DEADLINE_S) -> list[FactKind | str]:
        """Read until `expected` is among the facts from index `start` on; those of its instance, as kinds
        (a check fact as `kind:check`)."""
        deadline = time.monotonic() + timeout_s
        while expected not in self.seen[start:]:
            if time.monotonic() > deadline:
                raise AssertionError(f"no {expected} within {timeout_s} s; saw {self.of(expected.instance_id)}")
            entries = self.runtime.read_facts(100)
            self.runtime.ack([entry_id for entry_id, _ in entries])
            self.seen.extend(fact for _, fact in entries)
        return self.of(expected.instance_id, start)

    def of(self, instance_id: str, start: int = 0) -> list[FactKind | str]:
        return [f"{f.kind}:{f.check}" if f.check else f.kind for f in self.seen[start:] if f.instance_id == instance_id]


@pytest.fixture
def runtime(real_redis: redis.Redis) -> RedisRuntime:
    return RedisRuntime(real_redis, namespace=WORKER_NAMESPACE, node_ttl_ms=2000, order_key=ORDER_KEY)


@pytest.fixture
def facts(runtime: RedisRuntime) -> Facts:
    return Facts(runtime)
