"""The progressive strategy: canaries, then the new version grown step by step, each step gated by a pause or a
promote; the deadline is suspended during a pause; failure beyond the reschedule budget fails (and reverts).

Every instance here comes up at once when brought up; with `min_healthy_ms` 1000 it is healthy 1 s later.
"""

from __future__ import annotations

from typing import Any

import pytest

from mn_deploy_core.errors import InvalidManifestError, RefusedError
from mn_deploy_core.manifest import load_manifest
from mn_deploy_core.policy import normalize
from mn_deploy_core.ports import FactKind, Role
from mn_deploy_core.status import FAILED_UNHEALTHY
from mn_deploy_core.strategies import PLANNERS
from tests.scripted import World, service_manifest

KEY = "agent-api"
PAUSED_STEPS = [{"canary": 1, "pause_ms": 60_000}, {"percent": 50, "pause_ms": 30_000}, {"percent": 100}]
MANUAL_STEPS = [{"canary": 1}, {"percent": 50}, {"percent": 100}]


def progressive(steps: list[dict[str, Any]], count: int = 4, **update: Any) -> tuple[World, str]:
    """Version 1 of `count` workers stable at 1 s, then version 2 deployed progressively with `steps`."""
    world = World.settled(service_manifest("agent:1", count=count))
    policy = {"strategy": "progressive", "steps": steps, "max_parallel": 1, **update}
    record = world.deploy(service_manifest("agent:2", count=count, update=policy))
    return world, record.deployment_id


def new_agents(world: World) -> list[tuple[str, str]]:
    """(agent, role) of every live version 2 instance."""
    return sorted((v.agent_id, v.role) for v in world.controller.instances() if v.version == "2")


def settle_until(world: World, until: float) -> None:
    """Bring up whatever is placed, at once, while time passes up to `until`."""
    world.bring_up()
    while (wake := world.controller.next_wakeup()) is not None and wake <= until:
        world.advance(wake)
        world.bring_up()
    world.advance(until)


@pytest.mark.parametrize(
    ("steps", "agents", "sizes"),
    [
        (PAUSED_STEPS, 4, [1, 1, 2]),
        ([{"canary": 2}, {"percent": 50}, {"percent": 100}], 10, [2, 3, 5]),
        ([{"canary": 1}, {"percent": 10}, {"percent": 100}], 4, [1, 0, 3]),
        ([{"percent": 34}, {"percent": 100}], 3, [2, 1]),
        ([{"canary": 9}, {"percent": 100}], 3, [3, 0]),
    ],
)
def test_progressive_steps_grow_to_each_share_rounded_up_counting_the_canaries(
    steps: list[dict[str, Any]], agents: int, sizes: list[int]
) -> None:
    policy = normalize({"strategy": "progressive", "steps": steps})
    planned = PLANNERS["progressive"].steps(policy, tuple(f"w-{i}" for i in range(agents)))
    assert [len(step.agents) for step in planned] == sizes
    assert [a for step in planned for a in step.agents] == [f"w-{i}" for i in range(agents)]
    assert planned[0].role is (Role.CANARY if "canary" in steps[0] else Role.PRIMARY)


def test_progressive_canary_then_paused_steps_run_to_success() -> None:
    world, dep = progressive(PAUSED_STEPS)
    assert new_agents(world) == [("worker-0", "canary")]
    settle_until(world, 61_999)  # the canary is healthy at 2 s; its step pauses 60 s
    record = world.record(dep)
    assert (record.status, record.step, record.step_pause_until_ms) == ("running", 0, 62_000)
    assert new_agents(world) == [("worker-0", "canary")]
    settle_until(world, 62_000)  # promoted; the 50% step places worker-1
    assert new_agents(world) == [("worker-0", "primary"), ("worker-1", "primary")]
    settle_until(world, 200_000)
    record = world.record(dep)
    assert (record.status, record.step) == ("successful", 3)
    assert new_agents(world) == [(f"worker-{i}", "primary") for i in range(4)]
    types = world.event_types(dep)
    assert types.count("deployment_canary_ready") == 1 and types.count("deployment_promoted") == 1


def test_progressive_a_step_without_pause_waits_for_promote() -> None:
    world, dep = progressive(MANUAL_STEPS)
    world.converge()
    assert world.record(dep).status == "awaiting_promotion"
    world.controller.promote(KEY, now=world.clock.now)
    world.converge()
    record = world.record(dep)
    assert (record.status, record.step) == ("awaiting_promotion", 1)
    assert new_agents(world) == [("worker-0", "primary"), ("worker-1", "primary")]
    world.controller.promote(KEY, now=world.clock.now)
    world.converge()
    assert world.record(dep).status == "successful"
    assert world.event_types(dep).count("deployment_promoted") == 2


def test_progressive_promote_during_a_pause_is_refused() -> None:
    world, _ = progressive(PAUSED_STEPS)
    settle_until(world, 10_000)
    with pytest.raises(RefusedError, match="deployment is running, expected awaiting_promotion"):
        world.controller.promote(KEY, now=world.clock.now)


def test_progressive_the_progress_deadline_is_not_enforced_during_a_pause() -> None:
    # a 60 s pause is longer than the 20 s progress deadline: the deployment goes on
    world, dep = progressive(PAUSED_STEPS, progress_deadline_ms=20_000, healthy_deadline_ms=10_000)
    settle_until(world, 300_000)
    assert world.record(dep).status == "successful"


def test_progressive_an_unhealthy_instance_beyond_the_reschedule_budget_fails_and_reverts() -> None:
    world, dep = progressive(PAUSED_STEPS, auto_revert=True)
    settle_until(world, 62_000)
    (second,) = [i for i in world.runtime.live if i.startswith(f"{dep}.worker-1")]
    world.report(second, FactKind.FAILED)  # reschedule attempts: 1 by default, so it is replaced
    (replacement,) = [i for i in world.fresh() if i.startswith(f"{dep}.worker-1")]
    world.report(replacement, FactKind.FAILED)
    record = world.record(dep)
    assert (record.status, record.description) == ("failed", f"{FAILED_UNHEALTHY} - rolling back to version 1")
    assert world.record(KEY).target_version == "3"


def test_progressive_a_pause_survives_a_controller_restart() -> None:
    world, dep = progressive(PAUSED_STEPS)
    settle_until(world, 30_000)
    world.restart_controller()
    assert world.controller.next_wakeup() == 62_000
    settle_until(world, 62_000)
    assert world.record(dep).step == 1
    settle_until(world, 200_000)
    assert world.record(dep).status == "successful"


@pytest.mark.parametrize(
    ("steps", "problem"),
    [
        (None, "policies.update.steps is required for progressive deployments"),
        ([{"percent": 50}], "policies.update.steps must end with a step of percent 100"),
        ("all", "policies.update.steps must be a list"),
        ([{"canary": 0}, {"percent": 100}], "policies.update.steps[0].canary must be a positive integer"),
        ([{"percent": 50}, {"canary": 1}], "policies.update.steps[1].canary is only allowed in the first step"),
        (
            [{"percent": 60}, {"percent": 40}, {"percent": 100}],
            "policies.update.steps[1].percent must be an integer above 60 and at most 100",
        ),
        ([{"canary": 1, "percent": 5}], "policies.update.steps[0] must be an object with either canary or percent"),
        ([{"percent": 100, "pause_ms": -1}], "policies.update.steps[0].pause_ms must be a non-negative integer"),
        ([{"percent": 100, "wait": 5}], "policies.update.steps[0] has unknown key wait"),
    ],
)
def test_progressive_bad_steps_are_refused_with_a_message_naming_the_step(steps: Any, problem: str) -> None:
    update: dict[str, Any] = {"strategy": "progressive"}
    if steps is not None:
        update["steps"] = steps
    with pytest.raises(InvalidManifestError) as refused:
        load_manifest(service_manifest(update=update))
    assert problem in refused.value.problems
