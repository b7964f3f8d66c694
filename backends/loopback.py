"""Loopback ports: every local server we start (redis-server, the gRPC API, an agent's PORT) binds one."""

from __future__ import annotations

import socket

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A loopback port nobody listens on now (the OS picks it; a race with another binder is possible)."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])
