"""Serving a leader's gRPC address: telling a taken address from one this host can never bind, and waiting for a
taken one (the leader being replaced may still hold it) instead of giving up the term."""

from __future__ import annotations

import logging

import grpc
import pytest

from backends.live.controller import serve
from backends.live.controller.server import Bind, WaitingServer, probe
from backends.loopback import free_port
from tests.live.conftest import held
from tests.scripted import World

WAITING = "leading without serving until it is free"


def waiting_server(address: str) -> WaitingServer:
    return WaitingServer(lambda: serve(World().controller, address), address)


def answers(address: str) -> bool:
    with grpc.insecure_channel(address) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=10)
        except grpc.FutureTimeoutError:
            return False
    return True


def test_probe_tells_a_taken_address_from_a_free_one() -> None:
    address = f"127.0.0.1:{free_port()}"

    assert probe(address) is Bind.FREE
    with held(address):
        assert probe(address) is Bind.TAKEN
        assert probe(f"localhost:{address.rpartition(':')[2]}") is Bind.TAKEN


@pytest.mark.parametrize(
    "address",
    ["203.0.113.9:55051", "no-such-host.invalid:55051", ":55051", "unix:/nonexistent/mn.sock", "55051"],
    ids=["not-this-host", "unresolved", "no-host", "unix", "no-port"],
)
def test_probe_says_when_this_host_can_never_bind_an_address(address: str) -> None:
    assert probe(address) is Bind.IMPOSSIBLE


def test_a_taken_address_is_served_as_soon_as_it_is_free(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="backends.live.controller.server")
    address = f"127.0.0.1:{free_port()}"
    with held(address) as old_leader:
        server = waiting_server(address)
        server.open()
        old_leader.close()
        try:
            assert answers(address)
        finally:
            server.close()

    assert [r.getMessage() for r in caplog.records] == [
        f"gRPC address {address} is in use (by the previous leader, if paused or slow to step down): {WAITING}",
        f"serving gRPC on {address}",
    ]
    assert probe(address) is Bind.FREE, "closed: the address is let go"


def test_a_term_that_ends_while_waiting_binds_nothing() -> None:
    address = f"127.0.0.1:{free_port()}"
    with held(address):
        server = waiting_server(address)
        server.open()
        server.close()

    assert probe(address) is Bind.FREE


def test_an_address_this_host_can_never_bind_is_refused_at_once(caplog: pytest.LogCaptureFixture) -> None:
    """Waiting for it would hold the lease without ever serving, and keep every other controller out."""
    server = waiting_server("203.0.113.9:55051")

    with pytest.raises(RuntimeError, match="Failed to bind"):
        server.open()
    server.close()
    assert WAITING not in caplog.text
