"""A worker's agents never share a port: `reserved_port` hands a port out only with a claim no other reservation
on the host can take, within a process and across processes, and the claim goes with its holder however it ends.
The claim is a name in Linux's abstract namespace: these tests are of Linux, as the worker is."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from backends.loopback import ATTEMPTS, free_port, reserved_port

ROOT = Path(__file__).resolve().parents[2]
HOLDER = """
import sys
from backends.loopback import reserved_port
with reserved_port(lambda: int(sys.argv[1])) as port:
    print(port, flush=True)
    sys.stdin.read()
"""


def offering(*ports: int) -> Callable[[], int]:
    """Candidates as the OS would offer them, in this order."""
    offered: Iterator[int] = iter(ports)
    return lambda: next(offered)


def test_a_port_held_in_this_process_is_not_handed_out_again_until_released() -> None:
    taken, other = free_port(), free_port()
    with reserved_port(offering(taken)) as first, reserved_port(offering(taken, other)) as second:
        assert (first, second) == (taken, other)
    with reserved_port(offering(taken)) as again:
        assert again == taken


def test_a_port_held_by_another_process_is_not_handed_out_and_is_free_once_that_process_is_killed() -> None:
    taken, other = free_port(), free_port()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(taken)], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == str(taken)  # it holds the claim now
        with reserved_port(offering(taken, other)) as port:
            assert port == other
    finally:
        holder.kill()
        holder.wait()
    with reserved_port(offering(taken)) as port:
        assert port == taken


def test_when_every_candidate_is_held_the_reservation_fails_with_a_clear_error() -> None:
    taken = free_port()
    with (
        reserved_port(offering(taken)),
        pytest.raises(OSError, match=f"in {ATTEMPTS} attempts"),
        reserved_port(lambda: taken),
    ):
        pass
