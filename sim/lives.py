"""Running a generator of waits on SimPy time, without a SimPy process.

A process costs an event to start it, a resume through `Process._resume` at every step and an event to end it;
an instance's life only waits, and paid more for that bookkeeping than for living. `start` takes the first
step at once but before anything else due now, as a new process does, and each wait after it is a plain
timeout whose callback takes the next step: a life makes the events a process would, in the same order, less
the end event that nothing waits for (so a run's results do not change).

`late` is the driver's alarm on the same terms: one event, heard after everything else due at its time.
"""

from __future__ import annotations

from collections.abc import Callable, Generator

import simpy
from simpy.events import NORMAL, URGENT

Waits = Generator[float, None, None]
"""A life: each value is how long it waits, in ms, before its next step."""


class _Now(simpy.Event):
    """Due now, before every event already due now (SimPy's `Initialize`, without a process); triggered at
    once, as SimPy's own `Timeout` and `Initialize` are."""

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.callbacks = []
        self._ok = True
        self._value = None
        env.schedule(self, URGENT)


class _Late(simpy.Event):
    """Due after `delay`, after every other event due then, including those scheduled meanwhile."""

    def __init__(self, env: simpy.Environment, delay: float) -> None:
        self.env = env
        self.callbacks = []
        self._ok = True
        self._value = None
        env.schedule(self, NORMAL + 1, delay)


class _Life:
    __slots__ = ("env", "waits")

    def __init__(self, env: simpy.Environment, waits: Waits) -> None:
        self.env = env
        self.waits = waits

    def step(self, _event: simpy.Event) -> None:
        """Run the life up to its next wait, and wake it up after that."""
        delay = next(self.waits, None)
        if delay is not None:
            simpy.Timeout(self.env, delay).callbacks.append(self.step)


def start(env: simpy.Environment, waits: Waits) -> None:
    """Run `waits` from now on; it ends when the generator returns."""
    _Now(env).callbacks.append(_Life(env, waits).step)


def late(env: simpy.Environment, delay: float, callback: Callable[[simpy.Event], None]) -> None:
    """Call `callback` in `delay` ms, once everything else due then has happened: one event where a timeout that
    triggers an event of its own would cost two."""
    _Late(env, delay).callbacks.append(callback)
