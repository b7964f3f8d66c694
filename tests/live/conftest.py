"""A JobService on a loopback port over the scripted world, the official SDK client pointed at it, and an address
held as a paused leader holds it."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from backends.live.bundles import MemoryBundleStore
from backends.live.grpc import serve
from backends.loopback import free_port
from tests.scripted import World


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
