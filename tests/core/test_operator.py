"""R11: operator actions: pause, resume, fail, rollback, and what is refused.

Reference: SEMANTICS.md §10, reference/mirrorneuron-deployments.md §9 and §18 scenarios 28-30
(scenario 30 as SEMANTICS amends it: resume restores awaiting_promotion, so the later promote succeeds).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mn_deploy_core.controller import Controller
from mn_deploy_core.errors import (
    DeploymentError,
    InvalidArgumentError,
    NoRollbackTargetError,
    NotFoundError,
    RefusedError,
)
from mn_deploy_core.manifest import load_manifest
from mn_deploy_core.ports import FactKind
from mn_deploy_core.status import AWAITING_PROMOTION, FAILED_BY_OPERATOR, PAUSED, RUNNING
from tests.scripted import World, service_manifest

KEY = "agent-api"
PD = 60_000
TIMING = {"min_healthy_ms": 1000, "healthy_deadline_ms": 25_000, "progress_deadline_ms": PD}

VERBS: dict[str, Callable[[Controller, str], Any]] = {
    "paused": lambda c, x: c.pause(x, now=0),
    "resumed": lambda c, x: c.resume(x, now=0),
    "promoted": lambda c, x: c.promote(x, now=0),
    "failed": lambda c, x: c.fail(x, now=0),
}


def manifest(image: str = "agent:1", **update: Any) -> dict[str, Any]:
    count = update.pop("count", 3)
    return service_manifest(image, count=count, update={**TIMING, **update})


def stable_world(image: str = "agent:1", **update: Any) -> World:
    return World.settled(manifest(image, **update))


def awaiting_world() -> World:
    """Version 1 stable, version 2 a healthy canary awaiting promotion."""
    world = stable_world()
    world.deploy(manifest("agent:2", strategy="canary", canary=1))
    world.converge()
    assert world.record(KEY).status == "awaiting_promotion"
    return world


def stored(world: World, deployment_id: str) -> dict[str, Any]:
    record = world.store.load_deployment(deployment_id)
    assert record is not None
    return record.to_json()


def versions(world: World) -> list[str]:
    return [v.version for v in world.controller.versions(KEY)]


# --- pause and resume -------------------------------------------------------------------------------------


def test_r11_pause_sets_paused_with_the_default_description() -> None:
    world = stable_world()
    world.deploy(manifest("agent:2", max_parallel=1))
    record = world.controller.pause(KEY, now=world.clock.now)
    assert record.status == "paused"
    assert record.description == PAUSED
    assert record.previous_status == "running"
    assert world.event_types(KEY)[-1] == "deployment_paused"
    assert world.store.deployment_events(record.deployment_id)[-1].fields["reason"] == PAUSED


def test_r11_pause_with_a_reason() -> None:
    world = stable_world()
    world.deploy(manifest("agent:2"))
    record = world.controller.pause(KEY, reason="waiting for the DBA", now=world.clock.now)
    assert record.description == "waiting for the DBA"
    assert world.store.deployment_events(record.deployment_id)[-1].fields["reason"] == "waiting for the DBA"


def test_r11_no_new_placements_while_paused_but_health_tracking_goes_on() -> None:
    world = stable_world()
    record = world.deploy(manifest("agent:2", max_parallel=1))
    (first,) = world.fresh()
    world.controller.pause(KEY, now=world.clock.now)
    world.bring_up([first])
    world.advance(world.clock.now + 5 * PD)
    paused = world.record(record.deployment_id)
    assert paused.status == "paused"
    assert paused.counters.healthy == 1
    assert paused.counters.placed == 1
    assert world.fresh() == []
    assert "deployment_instance_healthy" in world.event_types(KEY)
    # the healthy instance serves even while paused
    assert first in {s.instance_id for s in world.registry.lookup("api")}
    record = world.controller.resume(KEY, now=world.clock.now)
    assert record.status == "running"
    assert record.description == RUNNING
    assert len(world.fresh()) == 1
    world.converge()
    assert world.record(record.deployment_id).status == "successful"


def test_r11_pause_and_resume_are_idempotent() -> None:
    world = stable_world()
    world.deploy(manifest("agent:2"))
    world.clock.now += 500
    first = world.controller.pause(KEY, now=world.clock.now)
    world.clock.now += 500
    again = world.controller.pause(KEY, now=world.clock.now)
    assert again.status == "paused"
    assert again.previous_status == "running"
    assert world.event_types(KEY).count("deployment_paused") == 1
    assert again.events == first.events
    resumed = world.controller.resume(KEY, now=world.clock.now)
    resumed_again = world.controller.resume(KEY, now=world.clock.now)
    assert resumed.status == resumed_again.status == "running"
    assert world.event_types(KEY).count("deployment_running") == 1
    assert resumed_again.events == resumed.events


def test_r11_resume_restores_awaiting_promotion_and_promote_still_works() -> None:
    # scenario 30 under SEMANTICS: MirrorNeuron's resume says running and strands the canary; we restore
    world = awaiting_world()
    paused = world.controller.pause(KEY, now=world.clock.now)
    assert paused.status == "paused"
    assert paused.previous_status == "awaiting_promotion"
    with pytest.raises(RefusedError) as info:
        world.controller.promote(KEY, now=world.clock.now)
    assert info.value.message == "deployment is paused, expected awaiting_promotion"
    resumed = world.controller.resume(KEY, now=world.clock.now)
    assert resumed.status == "awaiting_promotion"
    assert resumed.description == AWAITING_PROMOTION
    assert resumed.previous_status is None
    assert world.event_types(KEY)[-2:] == ["deployment_paused", "deployment_running"]
    promoted = world.controller.promote(KEY, now=world.clock.now)
    assert promoted.status == "running"
    world.converge()
    assert world.record(KEY).status == "successful"
    assert world.record(KEY).stable_version == "2"


def test_r11_canaries_turning_healthy_while_paused_await_promotion_after_resume() -> None:
    world = stable_world()
    world.deploy(manifest("agent:2", strategy="canary", canary=1))
    world.controller.pause(KEY, now=world.clock.now)
    world.converge()
    assert world.record(KEY).status == "paused"
    assert world.record(KEY).counters.healthy == 1
    assert world.controller.resume(KEY, now=world.clock.now).status == "awaiting_promotion"


def test_r11_canary_turning_unhealthy_while_paused_resumes_to_running() -> None:
    world = awaiting_world()
    world.controller.pause(KEY, now=world.clock.now)
    (canary,) = [v.instance_id for v in world.controller.instances(KEY) if v.role == "canary"]
    world.report(canary, FactKind.FAILED)
    record = world.controller.resume(KEY, now=world.clock.now)
    assert record.status == "running"
    world.converge()
    assert world.record(KEY).status == "awaiting_promotion"


# --- fail -------------------------------------------------------------------------------------------------


def test_r11_fail_marks_the_deployment_failed() -> None:
    world = stable_world()
    record = world.deploy(manifest("agent:2"))
    failed = world.controller.fail(KEY, now=world.clock.now)
    assert failed.status == "failed"
    assert failed.description == FAILED_BY_OPERATOR
    assert world.event_types(KEY)[-1] == "deployment_failed"
    assert world.record(record.deployment_id).status == "failed"


def test_r11_fail_a_paused_deployment() -> None:
    world = stable_world()
    world.deploy(manifest("agent:2"))
    world.controller.pause(KEY, now=world.clock.now)
    assert world.controller.fail(KEY, now=world.clock.now).status == "failed"


def test_r11_fail_with_auto_revert_gets_the_suffix() -> None:
    world = stable_world()
    world.deploy(manifest("agent:2", auto_revert=True))
    failed = world.controller.fail(KEY, now=world.clock.now)
    assert failed.description == f"{FAILED_BY_OPERATOR} - rolling back to version 1"
    assert world.record(KEY).target_version == "3"


# --- rollback ---------------------------------------------------------------------------------------------


def test_r11_rollback_scenario_28_stable_1_and_2_current_2() -> None:
    world = stable_world()
    world.deploy(manifest("agent:2"))
    world.converge()
    assert world.record(KEY).current_version == "2"
    v1 = world.store.load_version(KEY, "1")

    record = world.controller.rollback(KEY, reason="v2 leaks memory", now=world.clock.now)
    assert record.target_version == "3"
    assert record.rollback == {"from_version": "2", "to_version": "1", "reason": "v2 leaks memory"}
    v3 = world.store.load_version(KEY, "3")
    assert v1 is not None and v3 is not None
    assert v3.manifest == v1.manifest
    assert v3.spec_digest == v1.spec_digest
    assert v3.created_by == "rollback"
    assert v3.rollback == record.rollback
    world.converge()
    done = world.record(KEY)
    assert done.status == "successful"
    assert done.current_version == done.stable_version == "3"
    v1_agent = load_manifest(v1.manifest).agents["worker-0"].digest
    assert {v.spec_digest for v in world.controller.instances(KEY)} == {v1_agent}


def test_r11_rollback_scenario_29_only_v1_stable_and_v2_awaiting_goes_back_to_v1() -> None:
    # SEMANTICS §10 amends scenario 29: mid-rollout the current version is v2, so v1 is the target
    world = awaiting_world()
    awaiting = world.record(KEY).deployment_id
    (canary,) = [v.instance_id for v in world.controller.instances(KEY) if v.role == "canary"]
    record = world.controller.rollback(KEY, now=world.clock.now)
    assert record.rollback == {"from_version": "2", "to_version": "1", "reason": None}
    assert record.target_version == "3"
    assert world.record(awaiting).status == "cancelled"
    assert canary in world.runtime.stopped
    assert versions(world) == ["1", "2", "3"]


def test_r11_rollback_uses_the_target_versions_own_policy() -> None:
    world = stable_world(strategy="canary", canary=1, max_parallel=2)
    world.deploy(manifest("agent:2", max_parallel=1))
    world.converge()
    record = world.controller.rollback(KEY, now=world.clock.now)
    assert record.policy["strategy"] == "canary"
    assert record.policy["max_parallel"] == 2
    # not a revert: the rollback goes through its canary and waits for promotion
    world.converge()
    assert world.record(KEY).status == "awaiting_promotion"
    world.controller.promote(KEY, now=world.clock.now)
    world.converge()
    assert world.record(KEY).status == "successful"


def test_r11_rollback_to_an_explicit_version() -> None:
    world = stable_world()
    for image in ("agent:2", "agent:3"):
        world.deploy(manifest(image))
        world.converge()
    record = world.controller.rollback(KEY, version="1", now=world.clock.now)
    assert record.rollback == {"from_version": "3", "to_version": "1", "reason": None}
    assert world.store.load_version(KEY, "4").manifest == world.store.load_version(KEY, "1").manifest


def test_r11_rollback_default_skips_the_current_version() -> None:
    world = stable_world()
    for image in ("agent:2", "agent:3"):
        world.deploy(manifest(image))
        world.converge()
    record = world.controller.rollback(KEY, now=world.clock.now)
    assert record.rollback is not None
    assert record.rollback["to_version"] == "2"


def test_r11_rollback_to_an_unknown_version_has_no_target() -> None:
    world = stable_world()
    with pytest.raises(NoRollbackTargetError) as info:
        world.controller.rollback(KEY, version="7", now=world.clock.now)
    assert info.value.message == f"no rollback target found for deployment {KEY}"


def test_r11_rollback_with_a_single_stable_version_has_no_target() -> None:
    world = stable_world()
    with pytest.raises(NoRollbackTargetError):
        world.controller.rollback(KEY, now=world.clock.now)
    assert versions(world) == ["1"]


def test_r11_rollback_cancels_the_active_deployment() -> None:
    world = stable_world()
    world.deploy(manifest("agent:2"))
    world.converge()
    active = world.deploy(manifest("agent:3", strategy="canary", canary=1))
    (canary,) = world.fresh()
    world.controller.rollback(KEY, version="1", now=world.clock.now)
    cancelled = world.record(active.deployment_id)
    assert cancelled.status == "cancelled"
    assert canary in world.runtime.stopped
    assert world.record(KEY).target_version == "4"


def test_r11_rollback_by_deployment_id() -> None:
    world = stable_world()
    world.deploy(manifest("agent:2"))
    world.converge()
    first = world.controller.list(KEY)[0].deployment_id
    record = world.controller.rollback(first, now=world.clock.now)
    assert record.deployment_key == KEY
    assert record.rollback is not None
    assert record.rollback["to_version"] == "1"


# --- refused on terminal deployments, unknown ids ----------------------------------------------------------


def terminal_worlds() -> dict[str, Callable[[], tuple[World, str]]]:
    def successful() -> tuple[World, str]:
        world = stable_world()
        return world, world.record(KEY).deployment_id

    def failed() -> tuple[World, str]:
        world = stable_world()
        record = world.deploy(manifest("agent:2"))
        world.controller.fail(KEY, now=world.clock.now)
        return world, record.deployment_id

    def cancelled() -> tuple[World, str]:
        world = stable_world()
        record = world.deploy(manifest("agent:2"))
        world.deploy(manifest("agent:3"))
        return world, record.deployment_id

    def version_recorded() -> tuple[World, str]:
        world = World()
        world.deploy(manifest() | {"job_type": "batch"})
        world.converge()
        record = world.deploy(manifest("agent:2") | {"job_type": "batch"})
        return world, record.deployment_id

    return {"successful": successful, "failed": failed, "cancelled": cancelled, "version_recorded": version_recorded}


@pytest.mark.parametrize("status", ["successful", "failed", "cancelled", "version_recorded"])
@pytest.mark.parametrize("verb", list(VERBS))
def test_r11_actions_on_a_terminal_deployment_are_refused(status: str, verb: str) -> None:
    world, deployment_id = terminal_worlds()[status]()
    assert world.record(deployment_id).status == status
    before = stored(world, deployment_id)
    events = len(world.store.deployment_events(deployment_id))
    placed = list(world.runtime.order)
    with pytest.raises(RefusedError) as info:
        VERBS[verb](world.controller, deployment_id)
    assert info.value.message == f"deployment {deployment_id} is {status}; it can't be {verb}"
    assert stored(world, deployment_id) == before
    assert len(world.store.deployment_events(deployment_id)) == events
    assert world.runtime.order == placed


@pytest.mark.parametrize("verb", list(VERBS))
def test_r11_actions_by_key_on_a_terminal_current_deployment_are_refused(verb: str) -> None:
    world = stable_world()
    deployment_id = world.record(KEY).deployment_id
    before = stored(world, deployment_id)
    with pytest.raises(RefusedError) as info:
        VERBS[verb](world.controller, KEY)
    assert info.value.message == f"deployment {deployment_id} is successful; it can't be {verb}"
    assert stored(world, deployment_id) == before


def test_r11_promote_an_active_deployment_not_awaiting_is_refused() -> None:
    world = stable_world()
    record = world.deploy(manifest("agent:2"))
    before = stored(world, record.deployment_id)
    with pytest.raises(RefusedError) as info:
        world.controller.promote(KEY, now=world.clock.now)
    assert info.value.message == "deployment is running, expected awaiting_promotion"
    assert stored(world, record.deployment_id) == before


@pytest.mark.parametrize("name", ["nope", "dep_agent-api_99"])
@pytest.mark.parametrize(
    "action",
    [
        lambda c, x: c.pause(x, now=0),
        lambda c, x: c.resume(x, now=0),
        lambda c, x: c.promote(x, now=0),
        lambda c, x: c.fail(x, now=0),
        lambda c, x: c.rollback(x, now=0),
        lambda c, x: c.rollback(x, version="1", now=0),
        lambda c, x: c.get(x),
    ],
    ids=["pause", "resume", "promote", "fail", "rollback", "rollback_version", "get"],
)
def test_r11_unknown_id_or_key_is_not_found(name: str, action: Callable[[Controller, str], Any]) -> None:
    world = stable_world()
    with pytest.raises(NotFoundError) as info:
        action(world.controller, name)
    assert info.value.message == f"deployment {name} was not found"
    assert isinstance(info.value, DeploymentError)
    assert versions(world) == ["1"]


@pytest.mark.parametrize(
    "call",
    [
        lambda c, text: c.pause(KEY, text, now=1.0),
        lambda c, text: c.resume(KEY, text, now=1.0),
        lambda c, text: c.fail(KEY, text, now=1.0),
        lambda c, text: c.rollback(KEY, reason=text, now=1.0),
        lambda c, text: c.rollback(KEY, tag=text, now=1.0),
    ],
    ids=["pause", "resume", "fail", "rollback reason", "rollback tag"],
)
def test_r11_a_reason_or_tag_over_1000_characters_is_refused_and_changes_nothing(
    call: Callable[[Controller, str], Any],
) -> None:
    world = World.settled(service_manifest())
    world.deploy(service_manifest("agent:2"))
    before = (world.record(KEY).to_json(), len(world.store.deployment_events(world.record(KEY).deployment_id)))

    with pytest.raises(InvalidArgumentError, match=r"^(reason|tag) is longer than 1000 characters \(1001\)$"):
        call(world.controller, "x" * 1001)

    after = (world.record(KEY).to_json(), len(world.store.deployment_events(world.record(KEY).deployment_id)))
    assert after == before


@pytest.mark.parametrize("text", ["two\nlines", "tab\there", "\x1b[2Jclear", "nul\0", "c1\x85"])
@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda c, text: c.pause(KEY, text, now=1.0), "reason"),
        (lambda c, text: c.fail(KEY, text, now=1.0), "reason"),
        (lambda c, text: c.rollback(KEY, tag=text, now=1.0), "tag"),
    ],
    ids=["pause", "fail", "rollback tag"],
)
def test_r11_a_reason_or_tag_with_a_control_character_is_refused_and_changes_nothing(
    call: Callable[[Controller, str], Any], name: str, text: str
) -> None:
    """It is shown on one line (a status, an event, a log line) that a line break or an escape would forge."""
    world = World.settled(service_manifest())
    world.deploy(service_manifest("agent:2"))
    before = (world.record(KEY).to_json(), len(world.store.deployment_events(world.record(KEY).deployment_id)))

    with pytest.raises(InvalidArgumentError) as caught:
        call(world.controller, text)

    assert caught.value.message == f"{name} must not hold control characters"
    after = (world.record(KEY).to_json(), len(world.store.deployment_events(world.record(KEY).deployment_id)))
    assert after == before


def test_r11_a_reason_of_1000_characters_is_kept_whole() -> None:
    world = World.settled(service_manifest())
    world.deploy(service_manifest("agent:2"))
    assert world.controller.pause(KEY, "y" * 1000, now=1.0).description == "y" * 1000
