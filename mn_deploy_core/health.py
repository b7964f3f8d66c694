"""Instance health (R8): raw facts in, one healthy / unhealthy verdict per instance out.

Each fact costs O(1); timers (the end of a `min_healthy_ms` window, a healthy deadline) go to the core's one
timer queue, which calls `due` when one fires.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mn_deploy_core.ports import Fact, FactKind
from mn_deploy_core.timers import Kind, Timers


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
    passing: tuple[str, ...] = ()
    """The checks passing now; a tuple, as a set costs 216 bytes even empty and a large run keeps one per instance."""
    passing_since: float = 0.0
    verdict: Verdict | None = None
    timer_at: float | None = None
    completed: bool = False
    stable_since: float | None = None
    """Since when it has been ready with every check passing, without a break: every fact reads it, so it is
    kept up to date (`recompute_stable`) rather than worked out each time."""

    def recompute_stable(self) -> None:
        """After `ready` or `passing` changed."""
        if self.ready and len(self.passing) >= self.checks:
            self.stable_since = max(self.ready_since, self.passing_since)
        else:
            self.stable_since = None

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
                self.recompute_stable()
        elif kind is FactKind.CHECK_PASSING:
            if fact.check not in self.passing:
                self.passing = (*self.passing, fact.check)
                if len(self.passing) == self.checks:
                    self.passing_since = now
                self.recompute_stable()
        elif kind is FactKind.CHECK_FAILING:
            self.passing = tuple(c for c in self.passing if c != fact.check)
            self.recompute_stable()
        elif kind in (FactKind.RESTARTED, FactKind.EXITED, FactKind.COMPLETED):
            self.ready = False
            self.passing = ()
            self.recompute_stable()
            self.completed = self.completed or kind is FactKind.COMPLETED
        return self.settle(now)


class HealthTracker:
    """Verdicts for every tracked instance; their timers sit in a `Timers` queue (its own, unless the
    controller shares its one queue)."""

    def __init__(self, timers: Timers | None = None) -> None:
        self._instances: dict[str, InstanceHealth] = {}
        self.timers = timers if timers is not None else Timers(lambda _kind, key, at: self.live(key, at))

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
            health.passing, health.passing_since = tuple(dict.fromkeys(checks)), placed_ms
            health.recompute_stable()
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

    def live(self, instance_id: str, at: float) -> bool:
        """Whether a health timer at `at` still stands for this instance."""
        health = self._instances.get(instance_id)
        return health is not None and health.timer_at == at

    def observe(self, fact: Fact, now: float) -> Verdict | None:
        health = self._instances.get(fact.instance_id)
        if health is None:
            return None
        verdict = health.apply(fact, now)
        self._arm(fact.instance_id, health)
        return verdict

    def due(self, instance_id: str, at: float) -> Verdict | None:
        """Its timer at `at` fired: the verdict that newly holds then, if any."""
        health = self._instances[instance_id]
        health.timer_at = None
        verdict = health.settle(at)
        self._arm(instance_id, health)
        return verdict

    def _arm(self, instance_id: str, health: InstanceHealth) -> None:
        due = health.due_at()
        if due != health.timer_at:
            health.timer_at = due
            if due is not None:
                self.timers.set(due, Kind.HEALTH, instance_id)
