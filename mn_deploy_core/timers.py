"""The one timer queue of the core: healthy deadlines and min_healthy windows, progress deadlines, step pauses.

Timers are never cancelled. An owner says whether an entry still stands (`live`); stale entries are dropped
when they reach the front, and the whole heap is rebuilt from the live ones when it has grown to twice their
number, so flapping facts cost amortized O(1) and the heap stays proportional to what is pending. At the same
millisecond a health timer fires before the others (a verdict first, then the deadline it may have met).
"""

from __future__ import annotations

import heapq
import itertools
from enum import IntEnum
from typing import Protocol


class Kind(IntEnum):
    """What a timer is for; the value orders timers due at the same time."""

    HEALTH = 0
    DEADLINE = 1
    STEP_PAUSE = 2


class Liveness(Protocol):
    def __call__(self, kind: Kind, key: str, at: float) -> bool: ...


class Timers:
    """Entries (at, kind, key): `key` is an instance id for health timers, a deployment id otherwise."""

    def __init__(self, live: Liveness) -> None:
        self._live = live
        self._heap: list[tuple[float, Kind, int, str]] = []
        self._seq = itertools.count()
        self._limit = 64
        self._earliest_new: float | None = None

    def __len__(self) -> int:
        """Entries held, stale ones included: what the heap costs."""
        return len(self._heap)

    def set(self, at: float, kind: Kind, key: str) -> None:
        heapq.heappush(self._heap, (at, kind, next(self._seq), key))
        if self._earliest_new is None or at < self._earliest_new:
            self._earliest_new = at
        if len(self._heap) > self._limit:
            self._heap = [entry for entry in self._heap if self._live(entry[1], entry[3], entry[0])]
            heapq.heapify(self._heap)
            self._limit = 2 * len(self._heap) + 64

    def next_at(self) -> float | None:
        """When the earliest live timer is due."""
        heap = self._heap
        while heap:
            at, kind, _, key = heap[0]
            if self._live(kind, key, at):
                return at
            heapq.heappop(heap)
        return None

    def take_earliest_new(self) -> float | None:
        """The earliest entry set since the last call (None: none was). Nothing falls due earlier without an entry
        set for it: entries go stale, and the only ones that come back are a progress deadline's older entries when
        a resume sets it anew, which merely wait for it. So a driver woken at `next_at` before need only look at
        these to know whether to wake earlier, without checking the queue after every fact."""
        earliest, self._earliest_new = self._earliest_new, None
        return earliest

    def pop_due(self, now: float) -> tuple[float, Kind, str] | None:
        """The earliest live timer due by `now`, removed from the queue."""
        at = self.next_at()
        if at is None or at > now:
            return None
        at, kind, _, key = heapq.heappop(self._heap)
        return at, kind, key
