"""Instance health (R8): raw facts in, one healthy / unhealthy verdict per instance out.

Each fact costs O(1); timers (the end of a `min_healthy_ms` window, a healthy deadline) sit in one heap
with lazy invalidation, so the tracker can say when it next needs a `due(now)` call.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from enum import StrEnum

from mn_deploy_core.ports import Fact, FactKind


class Verdict(StrEnum):
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


@dataclass(slots=True)
class InstanceHealth:
    """What is known of one instance. `checks` is the number of declared checks that must pass."""

    min_healthy_ms: float
    deadline_ms: float
    checks: int
    ready: bool = False
    ready_since: float = 0.0
    passing: set[str] = field(default_factory=set)
    passing_since: float = 0.0
    verdict: Verdict | None = None
    timer_at: float | None = None
    completed: bool = False

    @property
    def stable_since(self) -> float | None:
        """Since when it has been ready with every check passing, without a break."""
        if not self.ready or len(self.passing) < self.checks:
            return None
        return max(self.ready_since, self.passing_since)

    @property
    def serving(self) -> bool:
        """Healthy and still ready with its checks passing: what discovery calls passing."""
        return self.verdict is Verdict.HEALTHY and self.stable_since is not None

    def due_at(self) -> float | None:
        """The next time a verdict may fall without a new fact; None once judged or completed."""
        if self.verdict is not None or self.completed:
            return None
        since = self.stable_since
        healthy_at = None if since is None else since + self.min_healthy_ms
        if healthy_at is not None and healthy_at <= self.deadline_ms:
            return healthy_at
        return self.deadline_ms

    def settle(self, now: float) -> Verdict | None:
        """The verdict that holds at `now`, if one newly does; a completed (batch) instance gets none."""
        if self.verdict is not None or self.completed:
            return None
        since = self.stable_since
        if since is not None and since + self.min_healthy_ms <= min(now, self.deadline_ms):
            self.verdict = Verdict.HEALTHY
        elif now >= self.deadline_ms:
            self.verdict = Verdict.UNHEALTHY
        return self.verdict

    def apply(self, fact: Fact, now: float) -> Verdict | None:
        """Fold one fact in; return a verdict that falls because of it (a failure, or min_healthy_ms 0)."""
        kind = fact.kind
        if kind is FactKind.FAILED:
            if self.verdict is Verdict.UNHEALTHY:
                return None
            self.verdict = Verdict.UNHEALTHY
            return self.verdict
        if kind is FactKind.READY:
            if not self.ready:
                self.ready, self.ready_since = True, now
        elif kind is FactKind.CHECK_PASSING:
            if fact.check not in self.passing:
                self.passing.add(fact.check)
                if len(self.passing) == self.checks:
                    self.passing_since = now
        elif kind is FactKind.CHECK_FAILING:
            self.passing.discard(fact.check)
        elif kind in (FactKind.RESTARTED, FactKind.EXITED, FactKind.COMPLETED):
            self.ready = False
            self.passing.clear()
            self.completed = self.completed or kind is FactKind.COMPLETED
        return self.settle(now)


class HealthTracker:
    """Verdicts for every tracked instance, with one timer heap for all of them."""

    def __init__(self) -> None:
        self._instances: dict[str, InstanceHealth] = {}
        self._timers: list[tuple[float, int, str]] = []
        self._seq = itertools.count()

    def track(
        self,
        instance_id: str,
        placed_ms: float,
        min_healthy_ms: float,
        healthy_deadline_ms: float,
        checks: int,
    ) -> None:
        health = InstanceHealth(min_healthy_ms, placed_ms + healthy_deadline_ms, checks)
        self._instances[instance_id] = health
        self._arm(instance_id, health)

    def restore(
        self,
        instance_id: str,
        placed_ms: float,
        min_healthy_ms: float,
        healthy_deadline_ms: float,
        checks: tuple[str, ...],
        verdict: Verdict | None,
        serving: bool,
        *,
        completed: bool = False,
    ) -> None:
        """Track an instance a previous controller placed: one that was serving counts as ready and passing
        until a fact says otherwise; any other waits for facts, against its original healthy deadline."""
        health = InstanceHealth(
            min_healthy_ms, placed_ms + healthy_deadline_ms, len(checks), verdict=verdict, completed=completed
        )
        if serving:
            health.ready, health.ready_since = True, placed_ms
            health.passing, health.passing_since = set(checks), placed_ms
        self._instances[instance_id] = health
        self._arm(instance_id, health)

    def forget(self, instance_id: str) -> None:
        self._instances.pop(instance_id, None)

    def serving(self, instance_id: str) -> bool:
        health = self._instances.get(instance_id)
        return health is not None and health.serving

    def verdict(self, instance_id: str) -> Verdict | None:
        health = self._instances.get(instance_id)
        return None if health is None else health.verdict

    def observe(self, fact: Fact, now: float) -> Verdict | None:
        health = self._instances.get(fact.instance_id)
        if health is None:
            return None
        verdict = health.apply(fact, now)
        self._arm(fact.instance_id, health)
        return verdict

    def next_wakeup(self) -> float | None:
        self._drop_stale()
        return self._timers[0][0] if self._timers else None

    def pop_due(self, now: float) -> tuple[float, str, Verdict] | None:
        """The earliest verdict whose timer fell by `now`, as (time, instance id, verdict)."""
        while self.next_wakeup() is not None and self._timers[0][0] <= now:
            at, _, instance_id = heapq.heappop(self._timers)
            health = self._instances[instance_id]
            health.timer_at = None
            verdict = health.settle(at)
            self._arm(instance_id, health)
            if verdict is not None:
                return at, instance_id, verdict
        return None

    def _arm(self, instance_id: str, health: InstanceHealth) -> None:
        due = health.due_at()
        if due != health.timer_at:
            health.timer_at = due
            if due is not None:
                heapq.heappush(self._timers, (due, next(self._seq), instance_id))
                if len(self._timers) > 2 * len(self._instances) + 64:
                    self._compact()

    def _compact(self) -> None:
        """Rebuild the heap from the live timers only: flapping facts must not grow it (amortized O(1))."""
        self._timers = [(h.timer_at, next(self._seq), i) for i, h in self._instances.items() if h.timer_at is not None]
        heapq.heapify(self._timers)

    def _drop_stale(self) -> None:
        timers = self._timers
        while timers:
            at, _, instance_id = timers[0]
            health = self._instances.get(instance_id)
            if health is not None and health.timer_at == at:
                return
            heapq.heappop(timers)
