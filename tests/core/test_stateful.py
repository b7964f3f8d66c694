"""R1, R4-R14 together: random operator actions, runtime facts and time against the invariants of SEMANTICS.md.

A hypothesis state machine deploys a few manifests of one key (same or different image, rolling, canary or
blue-green, with or without a topology change, auto_revert / auto_promote, small max_parallel), promotes,
pauses, resumes, fails and rolls back, feeds facts about random live instances and lets time pass. Refused
actions raise DeploymentError and change nothing. The invariants are checked after every step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from mn_deploy_core.errors import DeploymentError
from mn_deploy_core.ports import FactKind
from mn_deploy_core.status import FAILED_DEADLINE, TERMINAL
from tests.scripted import World, service_manifest

RECONCILED_FIELDS = {"reschedules", "counters", "updated_at", "events", "revision"}
RECONCILED_EVENTS = {
    "deployment_instance_lost",
    "deployment_instance_placed",
    "deployment_instance_healthy",
    "deployment_instance_unhealthy",
}

KEY = "agent-api"
SIDECAR = {"node_id": "sidecar", "agent_type": "executor", "config": {"image": "sidecar:1"}}


@st.composite
def manifests(draw: st.DrawFn) -> dict[str, Any]:
    strategy = draw(st.sampled_from(["rolling", "rolling", "canary", "canary", "blue-green", "progressive"]))
    canary = draw(st.integers(min_value=0, max_value=2))
    auto_promote = draw(st.booleans())
    if auto_promote and strategy == "canary" and canary == 0:
        canary = 1  # the only invalid combination (R2)
    update = {
        "strategy": strategy,
        "canary": canary,
        "auto_promote": auto_promote,
        "auto_revert": draw(st.booleans()),
        "max_parallel": draw(st.integers(min_value=1, max_value=2)),
        "min_healthy_ms": 1000,
        "healthy_deadline_ms": 5000,
        "progress_deadline_ms": draw(st.sampled_from([20_000, 20_000, 0])),
    }
    if strategy == "progressive":
        pauses = st.sampled_from([{}, {"pause_ms": 0}, {"pause_ms": 3000}])
        first = {"canary": draw(st.integers(min_value=1, max_value=2)), **draw(pauses)}
        update["steps"] = [first, {"percent": 50, **draw(pauses)}, {"percent": 100, **draw(pauses)}]
    document = service_manifest(
        draw(st.sampled_from(["agent:1", "agent:2", "agent:3"])),
        count=draw(st.integers(min_value=2, max_value=3)),
        extra_nodes=[SIDECAR] if draw(st.integers(min_value=0, max_value=3)) == 0 else [],
        update=update,
    )
    document["policies"]["reschedule"] = {"attempts": draw(st.sampled_from([0, 1, 2, 5]))}
    return document


@dataclass
class Up:
    """What the facts we sent say of one instance: ready, which checks pass, failed."""

    ready: bool = False
    passing: set[str] = field(default_factory=set)
    failed: bool = False


class Rollouts(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.world = World()
        self.facts: dict[str, Up] = {}
        self.frozen: dict[str, tuple[dict[str, Any], int]] = {}
        self.versions: list[str] = []
        self.waiting: set[str] = set()

    # ---- helpers ---------------------------------------------------------------------------------

    def pick(self, index: int) -> str | None:
        live = self.world.runtime.live
        return live[index % len(live)] if live else None

    def snapshot(self) -> tuple[Any, ...]:
        records = [r.to_json() for r in self.world.controller.list()]
        versions = [v.to_json() for v in self.world.controller.versions(KEY)]
        return records, versions, list(self.world.runtime.order), list(self.world.runtime.stopped)

    def act(self, action: Any, *args: Any, **kwargs: Any) -> None:
        """Run an operator action; one that is refused (DeploymentError) changes nothing at all."""
        before = self.snapshot()
        try:
            action(*args, now=self.world.clock.now, **kwargs)
        except DeploymentError:
            assert self.snapshot() == before

    def up(self, instance_id: str) -> Up:
        return self.facts.setdefault(instance_id, Up())

    def serving(self, instance_id: str) -> bool:
        up = self.facts.get(instance_id)
        checks = set(self.world.runtime.placements[instance_id].checks)
        return up is not None and up.ready and checks <= up.passing and not up.failed

    # ---- operator --------------------------------------------------------------------------------

    @initialize(document=manifests(), settle=st.booleans())
    def first_deploy(self, document: dict[str, Any], settle: bool) -> None:
        self.world.deploy(document)
        if settle:
            self.settle()

    @rule(document=manifests())
    def deploy(self, document: dict[str, Any]) -> None:
        self.world.deploy(document)

    @rule()
    def promote(self) -> None:
        self.act(self.world.controller.promote, KEY)

    @rule(reason=st.sampled_from([None, "hold on"]))
    def pause(self, reason: str | None) -> None:
        self.act(self.world.controller.pause, KEY, reason)

    @rule()
    def resume(self) -> None:
        self.act(self.world.controller.resume, KEY)

    @rule()
    def fail(self) -> None:
        self.act(self.world.controller.fail, KEY)

    @rule(version=st.none() | st.integers(min_value=1, max_value=8).map(str))
    def rollback(self, version: str | None) -> None:
        self.act(self.world.controller.rollback, KEY, version)

    # ---- facts -----------------------------------------------------------------------------------

    @rule(index=st.integers(min_value=0, max_value=63))
    def bring_up_one(self, index: int) -> None:
        instance_id = self.pick(index)
        if instance_id is not None:
            self.world.bring_up([instance_id])
            up = self.up(instance_id)
            up.ready = True
            up.passing |= set(self.world.runtime.placements[instance_id].checks)

    @rule()
    def bring_up_fresh(self) -> None:
        for instance_id in self.world.fresh():
            self.bring_up_one(self.world.runtime.live.index(instance_id))

    @rule(index=st.integers(min_value=0, max_value=63))
    def fail_one(self, index: int) -> None:
        instance_id = self.pick(index)
        if instance_id is not None:
            self.world.report(instance_id, FactKind.FAILED)
            self.up(instance_id).failed = True

    @rule(index=st.integers(min_value=0, max_value=63), passing=st.booleans())
    def flap_check(self, index: int, passing: bool) -> None:
        instance_id = self.pick(index)
        if instance_id is None:
            return
        for check in self.world.runtime.placements[instance_id].checks:
            if passing:
                self.world.report(instance_id, FactKind.CHECK_PASSING, check)
                self.up(instance_id).passing.add(check)
            else:
                self.world.report(instance_id, FactKind.CHECK_FAILING, check)
                self.up(instance_id).passing.discard(check)

    @rule(index=st.integers(min_value=0, max_value=63))
    def restart_one(self, index: int) -> None:
        instance_id = self.pick(index)
        if instance_id is not None:
            self.world.report(instance_id, FactKind.RESTARTED)
            up = self.up(instance_id)
            up.ready = False
            up.passing.clear()

    @rule()
    def restart_controller(self) -> None:
        """A controller crash and takeover: the new one restores from the store, then the runtime re-reports
        what it knows of every live instance (as the live runtime's resync does)."""
        self.world.restart_controller()
        for instance_id in self.world.runtime.live:
            up = self.facts.get(instance_id)
            if up is None:
                continue
            if up.failed:
                self.world.report(instance_id, FactKind.FAILED)
                continue
            if up.ready:
                self.world.report(instance_id, FactKind.READY)
            for check in sorted(up.passing):
                self.world.report(instance_id, FactKind.CHECK_PASSING, check)

    # ---- time ------------------------------------------------------------------------------------

    @rule()
    def tick_to_next_wakeup(self) -> None:
        wake = self.world.controller.next_wakeup()
        if wake is not None:
            self.world.advance(wake)

    @rule(ms=st.sampled_from([1, 250, 1000, 2000, 5000, 30_000]))
    def tick_by(self, ms: int) -> None:
        self.world.advance(self.world.clock.now + ms)

    @rule()
    def settle(self) -> None:
        """Bring every new instance up as it is placed and let time pass until nothing is pending (bounded)."""
        for _ in range(30):
            self.bring_up_fresh()
            wake = self.world.controller.next_wakeup()
            if wake is None:
                return
            self.world.advance(wake)

    # ---- invariants ------------------------------------------------------------------------------

    @invariant()
    def fleet_matches_the_runtime(self) -> None:
        assert set(self.world.runtime.live) == {v.instance_id for v in self.world.controller.instances()}

    @invariant()
    def at_most_one_active_deployment_per_key(self) -> None:
        active = [r for r in self.world.controller.list(KEY) if r.active]
        assert len(active) <= 1, [r.deployment_id for r in active]

    @invariant()
    def rolling_in_flight_within_max_parallel(self) -> None:
        for record in self.world.controller.list(KEY):
            if not record.active or record.mode != "agent_level":
                continue
            in_flight = [
                v.instance_id
                for v in self.world.instances_of(record.deployment_id)
                if v.role == "primary" and v.healthy is None
            ]
            # a replacement for an unhealthy instance is placed at once, outside the budget (R5): `.<n>` for n > 0
            first_placements = [i for i in in_flight if i.endswith(".0")]
            assert len(first_placements) <= record.policy["max_parallel"], in_flight

    @invariant()
    def canaries_and_candidates_only_for_the_active_trial(self) -> None:
        active = {r.deployment_id: r for r in self.world.controller.list(KEY) if r.active}
        for role, mode in (("canary", "agent_level"), ("candidate", "blue_green")):
            trial = [v for v in self.world.controller.instances(KEY) if v.role == role]
            for view in trial:
                owner = active.get(view.deployment_id)
                assert owner is not None and owner.mode == mode, view
            if role == "canary":
                for dep_id, record in active.items():
                    live = [v for v in trial if v.deployment_id == dep_id]
                    assert len(live) <= record.counters.desired_canaries

    @invariant()
    def versions_strictly_increase_and_are_never_reused(self) -> None:
        now = [v.version for v in self.world.controller.versions(KEY)]
        assert now[: len(self.versions)] == self.versions
        numbers = [int(v) for v in now]
        assert numbers == sorted(set(numbers))
        targets = [r.target_version for r in self.world.controller.list(KEY)]
        assert len(targets) == len(set(targets))
        assert set(targets) == set(now)
        self.versions = now

    @invariant()
    def terminal_records_change_only_by_standing_reconciliation(self) -> None:
        """Once terminal, a record only tells of the replacements of its lost instances (R16): their events, its
        counters, reschedule count and update time."""
        for record in self.world.controller.list(KEY):
            events = self.world.store.deployment_events(record.deployment_id)
            fixed = {k: v for k, v in record.to_json().items() if k not in RECONCILED_FIELDS}
            if record.deployment_id in self.frozen:
                frozen, seen = self.frozen[record.deployment_id]
                assert fixed == frozen
                assert {e.type for e in events[seen:]} <= RECONCILED_EVENTS
            elif record.status in TERMINAL:
                self.frozen[record.deployment_id] = (fixed, len(events))

    @invariant()
    def normal_lookup_returns_serving_primaries_only(self) -> None:
        views = {v.instance_id: v for v in self.world.controller.instances()}
        for service in self.world.registry.lookup("api"):
            view = views.get(service.instance_id)
            assert view is not None, service
            assert service.deployment_role == "primary" and view.role == "primary", service
            assert view.healthy is True, service
            assert self.serving(service.instance_id), service

    @invariant()
    def healthy_serving_primaries_are_found(self) -> None:
        found = {s.instance_id for s in self.world.registry.lookup("api")}
        for view in self.world.controller.instances(KEY):
            serves_api = bool(self.world.runtime.placements[view.instance_id].checks)  # the sidecar has no service
            if serves_api and view.role == "primary" and view.healthy and self.serving(view.instance_id):
                assert view.instance_id in found, view

    @invariant()
    def every_lifecycle_tells_what_the_controller_and_discovery_say(self) -> None:
        """The recorded lifecycle of every instance ever placed agrees with the live view, the registry and
        itself: verdicts, a discoverable interval open exactly while a normal lookup returns it, stops."""
        live = {v.instance_id: v for v in self.world.controller.instances()}
        found = {s.instance_id for s in self.world.registry.lookup("api")}
        for life in self.world.store.instance_lives():
            view = live.get(life.instance_id)
            if view is None:
                assert life.stopped_ms is not None, life
            else:
                assert life.stopped_ms is None, life
                standing = None if life.healthy_ms is None else True
                assert view.healthy == (False if life.unhealthy_ms is not None else standing), life
            intervals = life.discoverable_ms
            open_now = bool(intervals) and intervals[-1][1] is None
            assert open_now == (view is not None and life.serving and life.role == "primary"), life
            if self.world.runtime.placements[life.instance_id].checks:  # it has the api service
                assert open_now == (life.instance_id in found), life
            bounds = [t for start, end in intervals for t in (start, end) if t is not None]
            assert bounds == sorted(bounds), life
            if intervals:
                assert life.healthy_ms is not None and intervals[0][0] >= life.healthy_ms, life
            if life.unhealthy_ms is not None:
                assert not open_now and all(end is not None and end <= life.unhealthy_ms for _, end in intervals)
            assert len(life.passing_again_ms) == len(life.restart_ms), life

    @invariant()
    def no_deadline_failure_while_paused_or_awaiting_promotion(self) -> None:
        # a step that starts paused (or with healthy canaries awaiting promotion) never ends failed by deadline
        for record in self.world.controller.list(KEY):
            if record.deployment_id in self.waiting and record.status == "failed":
                assert not record.description.startswith(FAILED_DEADLINE), record.deployment_id
        self.waiting = {
            r.deployment_id for r in self.world.controller.list(KEY) if r.status in ("paused", "awaiting_promotion")
        }


Rollouts.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
test_stateful = Rollouts.TestCase
