"""The real-time driver: owns time for one controller during one lease term.

It blocks on the workers' fact stream for as long as the core has nothing due (`next_wakeup() - now`, capped by
the next lease renewal), then, under the controller lock, ticks, folds in the facts and acknowledges them. There
is no polling: an idle controller wakes once per renewal interval (a third of the lease TTL), to renew the lease
and look for workers whose heartbeat expired.

A gRPC call can make the core due earlier than the driver planned (a deploy starts healthy deadlines). The lock
the gRPC server takes is `Driver.lock`; releasing it after such a call calls `wake`, which must make the blocked
read return and must not be lost if it comes just before the driver blocks (the daemon adds a no-op entry to
the fact stream). Calls that leave the next wakeup where it was wake nothing.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Protocol

from backends.live.clock import wall_ms
from backends.live.controller.lease import Lease
from mn_deploy_core.controller import Controller
from mn_deploy_core.ports import Fact

CHORES_INTERVAL_S = 3600.0


class FactSource(Protocol):
    """What the driver needs from the live runtime (RedisRuntime)."""

    def read_facts(self, block_ms: int) -> list[tuple[str, Fact]]: ...

    def ack(self, entry_ids: Sequence[str]) -> None: ...

    def expire_nodes(self) -> list[Fact]: ...


class Driver:
    """Feeds `controller` facts and ticks until stopped or the lease is lost."""

    def __init__(
        self,
        controller: Controller,
        facts: FactSource,
        lease: Lease,
        wake: Callable[[], None],
        *,
        broken: Callable[[], bool] = lambda: False,
        chores: Callable[[], None] = lambda: None,
        chores_interval_s: float = CHORES_INTERVAL_S,
        clock: Callable[[], float] = wall_ms,
        settle: Callable[[], None] = lambda: None,
    ) -> None:
        """`broken`: whether a decision failed to be stored (by this thread or a gRPC call); the term is over.
        `chores`: housekeeping (retention) run under the lock between decisions, at the start of the term and
        every `chores_interval_s` after. `settle`: store what calls left queued without a decision of their own
        (the inputs a trace keeps), run under the lock after every gRPC call and before facts are acknowledged."""
        self._controller = controller
        self._broken = broken
        self._chores = chores
        self._chores_interval_s = chores_interval_s
        self._facts = facts
        self._lease = lease
        self._wake = wake
        self._clock = clock
        self._settle = settle
        self._lock = threading.Lock()
        self._planned_wake = math.inf
        self._renew_at = 0.0
        self.lock = CallerLock(self._lock, self._after_call)

    def run(self, stop: threading.Event) -> None:
        """Return when `stop` is set or this term may no longer act (renewal failed, lease expired).

        The first pass renews at once: restoring before it may have used part of the term. A batch of facts can
        take longer than a renewal interval to fold in (hundreds of agents starting at once on a busy host), so
        the lease is renewed between facts when due, and each fact is taken at its own time, after the timers
        due by then.
        """
        self._renew_at = chores_at = time.monotonic()
        while not stop.is_set() and not self._broken():
            with self._lock:
                block_ms = self._plan(self._renew_at)
            entries = self._facts.read_facts(block_ms) if block_ms > 0 else []
            renewing = time.monotonic() >= self._renew_at
            if not self._keep_lease():
                return
            with self._lock:  # node expiry may assign placements: no runtime call races a gRPC call's
                if not self._lease.held():
                    return
                self._controller.tick(self._clock())
                expired = self._facts.expire_nodes() if renewing else []
                for fact in [f for _, f in entries] + expired:
                    if not self._keep_lease():
                        return
                    now = self._clock()
                    self._controller.tick(now)
                    self._controller.observe(fact, now)
                if renewing and time.monotonic() >= chores_at:
                    self._chores()
                    chores_at = time.monotonic() + self._chores_interval_s
                self._settle()
            if entries:
                self._facts.ack([entry_id for entry_id, _ in entries])

    def _keep_lease(self) -> bool:
        """Renew the lease if it is due; False when this term may no longer act."""
        if time.monotonic() < self._renew_at:
            return self._lease.held()
        if not self._lease.renew():
            return False
        self._renew_at = time.monotonic() + self._lease.renew_interval_s
        return True

    def _plan(self, renew_at: float) -> int:
        """Milliseconds to block: until the core is next due or the lease needs renewing (0: due now)."""
        now = self._clock()
        renew = now + (renew_at - time.monotonic()) * 1000.0
        wake = self._controller.next_wakeup()
        self._planned_wake = renew if wake is None else min(wake, renew)
        return max(0, math.ceil(self._planned_wake - now))

    def _after_call(self) -> None:
        """After a gRPC call, still under the lock: wake the driver if the core is now due before it planned, or
        if the call broke the term (storing what it left queued may break it too)."""
        try:
            self._settle()
        finally:
            self._wake_if_due()

    def _wake_if_due(self) -> None:
        if self._broken():
            self._wake()
            return
        wake = self._controller.next_wakeup()
        if wake is not None and wake < self._planned_wake:
            self._planned_wake = wake
            self._wake()


class CallerLock:
    """The controller lock as the gRPC server takes it: releasing it runs `after_call` first, still held."""

    def __init__(self, lock: threading.Lock, after_call: Callable[[], None]) -> None:
        self._lock = lock
        self._after_call = after_call

    def __enter__(self) -> CallerLock:
        self._lock.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        try:
            self._after_call()
        finally:
            self._lock.release()
