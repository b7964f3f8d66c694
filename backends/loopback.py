"""Loopback ports: every local server we start (redis-server, the gRPC API, an agent's PORT) binds one.

`free_port` asks the OS for a port nobody listens on and lets it go at once, so whoever binds it next may not be
the one it was meant for. For an agent that window is its whole start (an interpreter, its imports), and a worker
starts many agents at once: two of them handed the same port is a birthday problem (one batch of 21 in 60 to 80
drew a duplicate here), and the loser exits on `Address already in use`. `reserved_port` closes that window among
the workers of one host: a port is handed out only with a claim that no other reservation can take while it is
held. The claim is a Unix socket bound to the port's name in Linux's abstract namespace, which is scoped as
loopback ports are (one per network namespace), needs no file, and goes with its holder however that ends.
Elsewhere than Linux there is no abstract namespace and `reserved_port` is `free_port`.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

LOOPBACK = "127.0.0.1"
ATTEMPTS = 1000
"""Ports tried before `reserved_port` gives up: each is a random pick of the OS, so only a host with nearly every
loopback port reserved gets this far."""


def free_port() -> int:
    """A loopback port nobody listens on now (the OS picks it; a race with another binder is possible)."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


@contextmanager
def reserved_port(candidates: Callable[[], int] = free_port) -> Iterator[int]:
    """A port from `candidates` that no other reservation on this host holds, held until the block ends.
    Raises OSError when none of `ATTEMPTS` candidates could be claimed."""
    if sys.platform != "linux":
        yield candidates()
        return
    for _ in range(ATTEMPTS):
        port = candidates()
        claim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            claim.bind(f"\0mn-deploy-port-{port}")
        except OSError:
            claim.close()
            continue
        with claim:
            yield port
        return
    raise OSError(f"no loopback port could be reserved in {ATTEMPTS} attempts")
