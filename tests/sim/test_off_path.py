"""Scenarios off the happy path, run against the real controller, with every time worked out by hand.

Every instance behaves the same unless a test says otherwise: running 1 s after placement, ready at once,
its one check passing 0.5 s later, so with `min_healthy_ms` 1000 it is healthy 2.5 s after placement and
serves (primary and passing) from then. Healthy deadline 5 s, progress deadline 20 s. Each test checks the
deployments, every instance's lifecycle, `final` and the metrics together, then `assert_one_story`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pytest

from sim import Result, load_scenario, run_scenario
from sim.result import LIFECYCLE_FIELDS
from tests.sim.story import assert_one_story

JSON = dict[str, Any]
KEY = "k"
TIMING = {"min_healthy_ms": 1000, "healthy_deadline_ms": 5000, "progress_deadline_ms": 20000}
STEADY = {"start_ms": 1000, "ready_ms": 0, "check_ms": 500}
CANARY = {"strategy": "canary", "canary": 1}
BLUE_GREEN = {"strategy": "blue-green"}
NO_RESTART = {"attempts": 0}
QUICK_RESTART = {"attempts": 2, "delay_ms": 500}
NO_RESCHEDULE = {"attempts": 0}

DONE = "Deployment completed successfully"
NOOP = "Deployment contained no runtime changes"
CANCELLED = "Cancelled due to newer version"
UNHEALTHY = "Failed due to unhealthy instances"
MARKED = "Deployment marked as failed"
AWAITING = "Deployment is running but requires manual promotion"
RERUN = "Batch version recorded as rerun"


# ---- building scenarios ----------------------------------------------------------------------------


def manifest(
    image: str,
    *,
    key: str = KEY,
    count: int = 2,
    job_type: str = "service",
    restart: JSON | None = None,
    reschedule: JSON | None = None,
    **update: Any,
) -> JSON:
    """One node `w` with `count` agents (w-0, w-1, ...) and one checked service."""
    policies: JSON = {"update": {**TIMING, **update}}
    if restart is not None:
        policies["restart"] = restart
    if reschedule is not None:
        policies["reschedule"] = reschedule
    node = {
        "node_id": "w",
        "agent_type": "executor",
        "count": count,
        "config": {"image": image},
        "services": [{"name": "api", "checks": [{"type": "http", "path": "/health"}]}],
    }
    return {"job_type": job_type, "deployment": {"key": key}, "nodes": [node], "edges": [], "policies": policies}


STANDARD = {"v1": manifest("w:1"), "v2": manifest("w:2"), "v3": manifest("w:3")}


def run(
    actions: Sequence[JSON],
    manifests: Mapping[str, JSON] | None = None,
    behaviors: Mapping[str, JSON] | None = None,
    until_ms: float | None = None,
) -> Result:
    document: JSON = {
        "name": "off-path",
        "manifests": dict(STANDARD if manifests is None else manifests),
        "behaviors": {"default": STEADY, **(behaviors or {})},
        "actions": list(actions),
    }
    if until_ms is not None:
        document["until_ms"] = until_ms
    return run_scenario(load_scenario(document))


def deploy(at: float, name: str, **overrides: Any) -> JSON:
    return {"at_ms": at, "deploy": name, **({"overrides": overrides} if overrides else {})}


def act(at: float, verb: str, **options: Any) -> JSON:
    return {"at_ms": at, verb: KEY, **options}


def crash(at: float, agent: str, key: str | None = None) -> JSON:
    return {"at_ms": at, "crash": {"agent": agent, **({"key": key} if key else {})}}


# ---- what we expect ----------------------------------------------------------------------------------

LIFE = ("role", *LIFECYCLE_FIELDS, "restarts", "outcome")


def life(
    placed: float,
    running: float | None = None,
    healthy: float | None = None,
    *,
    outcome: str = "healthy",
    role: str = "primary",
    unhealthy: float | None = None,
    promoted: float | None = None,
    stopped: float | None = None,
    completed: float | None = None,
    restarts: Iterable[float] = (),
    again: Iterable[float | None] = (),
    serving: Iterable[tuple[float, float | None]] = (),
) -> JSON:
    restart_ms = list(restarts)
    return {
        "role": role,
        "placed_ms": placed,
        "running_ms": running,
        "healthy_ms": healthy,
        "unhealthy_ms": unhealthy,
        "promoted_ms": promoted,
        "stopped_ms": stopped,
        "completed_ms": completed,
        "restart_ms": restart_ms,
        "passing_again_ms": list(again),
        "discoverable_ms": [list(s) for s in serving],
        "restarts": len(restart_ms),
        "outcome": outcome,
    }


def up(placed: float, *, stopped: float | None = None) -> JSON:
    """A steady primary placed at `placed`: serving from its verdict 2.5 s later until stopped (if ever)."""
    return life(
        placed,
        placed + 1000,
        placed + 2500,
        stopped=stopped,
        serving=[(placed + 2500, stopped)],
        outcome="healthy" if stopped is None else "stopped",
    )


def agent(
    manifest_name: str, version: str, healthy: bool | None = True, outcome: str = "healthy", role: str = "primary"
) -> JSON:
    return {"manifest_name": manifest_name, "version": version, "role": role, "healthy": healthy, "outcome": outcome}


def final(current: str | None, stable: str | None, status: str, *agents: JSON, key: str = KEY) -> JSON:
    """`final` of one key whose agents are w-0, w-1, ... in order."""
    return {
        key: {
            "current_version": current,
            "stable_version": stable,
            "status": status,
            "agents": {f"w-{i}": a for i, a in enumerate(agents)},
        }
    }


def lives(result: Result) -> JSON:
    return {row["instance_id"]: {name: row[name] for name in LIFE} for row in result.instances}


def expect(
    result: Result,
    *,
    deployments: list[tuple[str, str, float | None]],
    instances: JSON,
    final: JSON,
    measures: tuple[int | None, int, float],
    errors: Sequence[tuple[float, str]] = (),
) -> None:
    """Deployments as (status, description, duration), every instance's life, `final`, and the metrics
    (min_serving, unhealthy_instances, exposure_ms) agree with the hand-computed story, and with each other."""
    per_deployment = result.metrics["per_deployment"]
    assert [d["deployment_id"] for d in result.deployments] == [p["deployment_id"] for p in per_deployment]
    assert [
        (d["status"], d["description"], p["duration_ms"])
        for d, p in zip(result.deployments, per_deployment, strict=True)
    ] == deployments
    assert [p["outcome"] for p in per_deployment] == [d[0] for d in deployments]
    assert lives(result) == instances
    assert result.final == final
    metrics = result.metrics
    assert (metrics["min_serving"], metrics["unhealthy_instances"], metrics["exposure_ms"]) == measures
    assert [(e["t_ms"], e["message"]) for e in result.errors] == list(errors)
    assert_one_story(result)


def types(result: Result, deployment: int) -> list[str]:
    return [e["type"].removeprefix("deployment_") for e in result.deployments[deployment]["events"]]


def versions(result: Result, key: str = KEY) -> list[tuple[str, bool, str | None, str]]:
    return [(v["version"], v["stable"], v["manifest_name"], v["created_by"]) for v in result.versions[key]]


V1_UP = up(0)
V1_DONE = [("successful", DONE, 2500.0)]


# ---- pause, resume, promote, fail, rollback ----------------------------------------------------------


def test_pause_during_canary_refuses_promote_and_resume_brings_the_wait_back() -> None:
    """The canary turns healthy while paused: nothing moves until resume, which then awaits promotion."""
    result = run(
        [
            deploy(0, "v1"),
            deploy(10000, "v2", **CANARY),
            act(11000, "pause"),
            act(13000, "promote"),
            act(14000, "resume"),
            act(15000, "promote"),
        ]
    )
    expect(
        result,
        deployments=[*V1_DONE, ("successful", DONE, 7500.0)],
        instances={
            "dep_k_1.w-0.0": up(0, stopped=15000),
            "dep_k_1.w-1.0": up(0, stopped=15000),
            "dep_k_2.w-0.0": life(10000, 11000, 12500, role="canary", promoted=15000, serving=[(15000, None)]),
            "dep_k_2.w-1.0": up(15000),
        },
        final=final("2", "2", "successful", agent("v2", "2"), agent("v2", "2")),
        measures=(1, 0, 0.0),
        errors=[(13000.0, "deployment is paused, expected awaiting_promotion")],
    )
    assert types(result, 1) == [
        "started",
        "instance_placed",
        "paused",
        "instance_healthy",
        "running",
        "canary_ready",
        "promoted",
        "instance_placed",
        "instance_healthy",
        "successful",
    ]


def test_resume_restores_awaiting_promotion_so_the_progress_deadline_stays_suspended() -> None:
    """Paused while awaiting promotion, resumed: it awaits again (MirrorNeuron would say running and let the
    deadline fail it at 35 s); nothing is left to happen, so the run ends at the resume."""
    result = run(
        [
            deploy(0, "v1"),
            deploy(10000, "v2", **CANARY),
            act(13000, "pause"),
            act(14000, "promote"),
            act(15000, "resume"),
        ],
        until_ms=60000,
    )
    expect(
        result,
        deployments=[*V1_DONE, ("awaiting_promotion", AWAITING, None)],
        instances={
            "dep_k_1.w-0.0": V1_UP,
            "dep_k_1.w-1.0": V1_UP,
            "dep_k_2.w-0.0": life(10000, 11000, 12500, role="canary"),
        },
        final=final("1", "1", "awaiting_promotion", agent("v1", "1"), agent("v1", "1")),
        measures=(2, 0, 0.0),
        errors=[(14000.0, "deployment is paused, expected awaiting_promotion")],
    )
    assert result.end_ms == 15000.0
    assert types(result, 1)[-3:] == ["canary_ready", "paused", "running"]
    assert result.deployments[1]["previous_status"] is None


def test_fail_while_paused_keeps_the_rolled_agent_whose_verdict_comes_after_the_end() -> None:
    result = run([deploy(0, "v1"), deploy(10000, "v2"), act(11000, "pause"), act(12000, "fail", reason="bad metrics")])
    expect(
        result,
        deployments=[*V1_DONE, ("failed", MARKED, 2000.0)],
        instances={
            "dep_k_1.w-0.0": up(0, stopped=10000),
            "dep_k_1.w-1.0": V1_UP,
            "dep_k_2.w-0.0": up(10000),
        },
        final=final("1", "1", "failed", agent("v2", "2"), agent("v1", "1")),
        measures=(1, 0, 0.0),
    )
    assert result.deployments[1]["events"][-1]["reason"] == "bad metrics"
    assert types(result, 1)[-2:] == ["paused", "failed"]


def test_fail_while_paused_with_auto_revert_rolls_back_only_the_agent_that_changed() -> None:
    """The revert (v1's spec) finds w-1 still on v1: only w-0 is replaced, its unjudged v2 instance stopped."""
    result = run([deploy(0, "v1"), deploy(10000, "v2", auto_revert=True), act(11000, "pause"), act(12000, "fail")])
    expect(
        result,
        deployments=[
            *V1_DONE,
            ("failed", f"{MARKED} - rolling back to version 1", 2000.0),
            ("successful", DONE, 2500.0),
        ],
        instances={
            "dep_k_1.w-0.0": up(0, stopped=10000),
            "dep_k_1.w-1.0": V1_UP,
            "dep_k_2.w-0.0": life(10000, 11000, stopped=12000, outcome="stopped"),
            "dep_k_3.w-0.0": up(12000),
        },
        final=final("3", "3", "successful", agent("v1", "3"), agent("v1", "1")),
        measures=(1, 0, 0.0),
    )
    assert versions(result) == [
        ("1", True, "v1", "deploy"),
        ("2", False, "v2", "deploy"),
        ("3", True, "v1", "auto_revert"),
    ]
    assert result.deployments[2]["changed_agent_ids"] == ["w-0"]
    assert result.versions[KEY][2]["rollback"] == {"from_version": "2", "to_version": "1", "reason": MARKED}


def test_rollback_while_awaiting_promotion_cancels_the_canary_and_is_a_noop() -> None:
    """R11: mid-rollout "current" is the version rolling out, so the target is v1, which still runs everywhere."""
    result = run([deploy(0, "v1"), deploy(10000, "v2", **CANARY), act(13000, "rollback", reason="abort")])
    expect(
        result,
        deployments=[*V1_DONE, ("cancelled", CANCELLED, 3000.0), ("successful", NOOP, 0.0)],
        instances={
            "dep_k_1.w-0.0": V1_UP,
            "dep_k_1.w-1.0": V1_UP,
            "dep_k_2.w-0.0": life(10000, 11000, 12500, role="canary", stopped=13000, outcome="stopped"),
        },
        final=final("3", "3", "successful", agent("v1", "1"), agent("v1", "1")),
        measures=(2, 0, 0.0),
    )
    assert versions(result)[2] == ("3", True, "v1", "rollback")
    assert result.deployments[2]["rollback"] == {"from_version": "2", "to_version": "1", "reason": "abort"}


def test_rollback_mid_rollout_without_version_goes_back_to_the_last_stable_one() -> None:
    """Both agents already run v2 (w-1 not yet judged), so both roll back; the gap leaves nothing serving."""
    result = run([deploy(0, "v1"), deploy(10000, "v2"), act(13000, "rollback")])
    expect(
        result,
        deployments=[*V1_DONE, ("cancelled", CANCELLED, 3000.0), ("successful", DONE, 5000.0)],
        instances={
            "dep_k_1.w-0.0": up(0, stopped=10000),
            "dep_k_1.w-1.0": up(0, stopped=12500),
            "dep_k_2.w-0.0": up(10000, stopped=13000),
            "dep_k_2.w-1.0": up(12500, stopped=15500),
            "dep_k_3.w-0.0": up(13000),
            "dep_k_3.w-1.0": up(15500),
        },
        final=final("3", "3", "successful", agent("v1", "3"), agent("v1", "3")),
        measures=(0, 0, 0.0),
    )
    assert result.deployments[2]["rollback"] == {"from_version": "2", "to_version": "1", "reason": None}
    assert (result.deployments[2]["mode"], result.deployments[2]["changed_agent_ids"]) == (
        "agent_level",
        ["w-0", "w-1"],
    )


def test_rollback_mid_rollout_targets_the_last_stable_version_not_the_one_before_it() -> None:
    """v1 and v2 succeeded; v3 is rolling. "Current" is v3 (R11), so the target is v2, not v1."""
    result = run([deploy(0, "v1"), deploy(10000, "v2"), deploy(20000, "v3"), act(23000, "rollback")])
    expect(
        result,
        deployments=[
            *V1_DONE,
            ("successful", DONE, 5000.0),
            ("cancelled", CANCELLED, 3000.0),
            ("successful", DONE, 5000.0),
        ],
        instances={
            "dep_k_1.w-0.0": up(0, stopped=10000),
            "dep_k_1.w-1.0": up(0, stopped=12500),
            "dep_k_2.w-0.0": up(10000, stopped=20000),
            "dep_k_2.w-1.0": up(12500, stopped=22500),
            "dep_k_3.w-0.0": up(20000, stopped=23000),
            "dep_k_3.w-1.0": up(22500, stopped=25500),
            "dep_k_4.w-0.0": up(23000),
            "dep_k_4.w-1.0": up(25500),
        },
        final=final("4", "4", "successful", agent("v2", "4"), agent("v2", "4")),
        measures=(0, 0, 0.0),
    )
    assert versions(result)[3] == ("4", True, "v2", "rollback")
    assert result.deployments[3]["rollback"] == {"from_version": "3", "to_version": "2", "reason": None}


def test_promote_and_resume_after_fail_are_refused_with_the_terminal_message() -> None:
    result = run(
        [
            deploy(0, "v1"),
            deploy(10000, "v2", **CANARY),
            act(13000, "fail"),
            act(14000, "promote"),
            act(14000, "resume"),
        ]
    )
    expect(
        result,
        deployments=[*V1_DONE, ("failed", MARKED, 3000.0)],
        instances={
            "dep_k_1.w-0.0": V1_UP,
            "dep_k_1.w-1.0": V1_UP,
            "dep_k_2.w-0.0": life(10000, 11000, 12500, role="canary", stopped=13000, outcome="stopped"),
        },
        final=final("1", "1", "failed", agent("v1", "1"), agent("v1", "1")),
        measures=(2, 0, 0.0),
        errors=[
            (14000.0, "deployment dep_k_2 is failed; it can't be promoted"),
            (14000.0, "deployment dep_k_2 is failed; it can't be resumed"),
        ],
    )


@pytest.mark.parametrize(
    ("verb", "participle"), [("promote", "promoted"), ("pause", "paused"), ("resume", "resumed"), ("fail", "failed")]
)
def test_a_successful_deployment_refuses_every_operator_verb_and_nothing_changes(verb: str, participle: str) -> None:
    result = run([deploy(0, "v1"), act(5000, verb)])
    expect(
        result,
        deployments=V1_DONE,
        instances={"dep_k_1.w-0.0": V1_UP, "dep_k_1.w-1.0": V1_UP},
        final=final("1", "1", "successful", agent("v1", "1"), agent("v1", "1")),
        measures=(2, 0, 0.0),
        errors=[(5000.0, f"deployment dep_k_1 is successful; it can't be {participle}")],
    )
    assert types(result, 0) == ["created", "instance_placed", "instance_placed"] + ["instance_healthy"] * 2 + [
        "successful"
    ]


def test_rollback_during_the_first_deployment_has_no_target_and_the_rollout_goes_on() -> None:
    result = run([deploy(0, "v1"), act(1000, "rollback"), act(3000, "rollback", version="7")])
    message = f"no rollback target found for deployment {KEY}"
    expect(
        result,
        deployments=V1_DONE,
        instances={"dep_k_1.w-0.0": V1_UP, "dep_k_1.w-1.0": V1_UP},
        final=final("1", "1", "successful", agent("v1", "1"), agent("v1", "1")),
        measures=(2, 0, 0.0),
        errors=[(1000.0, message), (3000.0, message)],
    )


def test_rollback_by_tag_has_no_target_because_nothing_sets_a_tag() -> None:
    """Tags are never set (reference §16.6), so a tag, alone or with a version that exists, names no version."""
    result = run(
        [
            deploy(0, "v1"),
            deploy(10000, "v2"),
            act(30000, "rollback", tag="v1"),
            act(31000, "rollback", tag="v1", version="1"),
        ]
    )
    message = f"no rollback target found for deployment {KEY}"

    assert [(e["t_ms"], e["message"]) for e in result.errors] == [(30000.0, message), (31000.0, message)]
    assert [d["status"] for d in result.deployments] == ["successful", "successful"]


def test_pause_and_resume_are_idempotent_and_a_pause_longer_than_the_deadline_fails_nothing() -> None:
    result = run(
        [
            deploy(0, "v1"),
            deploy(10000, "v2"),
            act(10000, "pause"),
            act(30000, "pause"),
            act(50000, "resume"),
            act(51000, "resume"),
        ]
    )
    expect(
        result,
        deployments=[*V1_DONE, ("successful", DONE, 42500.0)],
        instances={
            "dep_k_1.w-0.0": up(0, stopped=10000),
            "dep_k_1.w-1.0": up(0, stopped=50000),
            "dep_k_2.w-0.0": up(10000),
            "dep_k_2.w-1.0": up(50000),
        },
        final=final("2", "2", "successful", agent("v2", "2"), agent("v2", "2")),
        measures=(1, 0, 0.0),
    )
    assert types(result, 1) == [
        "started",
        "instance_placed",
        "paused",
        "instance_healthy",
        "running",
        "instance_placed",
        "instance_healthy",
        "successful",
    ]


def test_an_instance_turning_unhealthy_while_paused_is_replaced_only_at_resume() -> None:
    """w-0 of v2 never passes its check: unhealthy at its healthy deadline (15 s) while paused; the
    replacement waits for the resume (20 s), fails too (25 s), and no reschedule is left."""
    result = run(
        [deploy(0, "v1"), deploy(10000, "v2"), act(11000, "pause"), act(20000, "resume")],
        behaviors={"v2": {"agents": {"w-0": {"check_failure": 1.0}}}},
    )
    expect(
        result,
        deployments=[*V1_DONE, ("failed", UNHEALTHY, 15000.0)],
        instances={
            "dep_k_1.w-0.0": up(0, stopped=10000),
            "dep_k_1.w-1.0": V1_UP,
            "dep_k_2.w-0.0": life(10000, 11000, unhealthy=15000, stopped=15000, outcome="unhealthy"),
            "dep_k_2.w-0.1": life(20000, 21000, unhealthy=25000, outcome="unhealthy"),
        },
        final=final("1", "1", "failed", agent("v2", "2", False, "unhealthy"), agent("v1", "1")),
        measures=(1, 2, 0.0),
    )
    placed = [e["t_ms"] for e in result.deployments[1]["events"] if e["type"] == "deployment_instance_placed"]
    assert placed == [10000.0, 20000.0]


def test_fail_during_blue_green_stops_the_candidates_and_the_old_job_keeps_serving() -> None:
    result = run([deploy(0, "v1"), deploy(10000, "v2", **BLUE_GREEN), act(12000, "fail")])
    candidate = life(10000, 11000, role="candidate", stopped=12000, outcome="stopped")
    expect(
        result,
        deployments=[*V1_DONE, ("failed", MARKED, 2000.0)],
        instances={
            "dep_k_1.w-0.0": V1_UP,
            "dep_k_1.w-1.0": V1_UP,
            "dep_k_2.w-0.0": candidate,
            "dep_k_2.w-1.0": candidate,
        },
        final=final("1", "1", "failed", agent("v1", "1"), agent("v1", "1")),
        measures=(2, 0, 0.0),
    )


# ---- back-to-back deploys --------------------------------------------------------------------------


def test_a_newer_version_cancels_the_rolling_one_and_replaces_what_it_had_rolled() -> None:
    result = run([deploy(0, "v1"), deploy(10000, "v2"), deploy(11200, "v3")])
    expect(
        result,
        deployments=[*V1_DONE, ("cancelled", CANCELLED, 1200.0), ("successful", DONE, 5000.0)],
        instances={
            "dep_k_1.w-0.0": up(0, stopped=10000),
            "dep_k_1.w-1.0": up(0, stopped=13700),
            "dep_k_2.w-0.0": life(10000, 11000, stopped=11200, outcome="stopped"),
            "dep_k_3.w-0.0": up(11200),
            "dep_k_3.w-1.0": up(13700),
        },
        final=final("3", "3", "successful", agent("v3", "3"), agent("v3", "3")),
        measures=(1, 0, 0.0),
    )
    assert versions(result) == [("1", True, "v1", "deploy"), ("2", False, "v2", "deploy"), ("3", True, "v3", "deploy")]
    assert result.deployments[2]["changed_agent_ids"] == ["w-0", "w-1"]


def test_the_same_spec_redeployed_while_it_rolls_out_is_idempotent() -> None:
    """R3 step 0: no new version, nothing cancelled; the run is exactly the one without the second deploy."""
    twice = run([deploy(0, "v1"), deploy(10000, "v2"), deploy(11200, "v2")])
    once = run([deploy(0, "v1"), deploy(10000, "v2")])
    expect(
        twice,
        deployments=[*V1_DONE, ("successful", DONE, 5000.0)],
        instances={
            "dep_k_1.w-0.0": up(0, stopped=10000),
            "dep_k_1.w-1.0": up(0, stopped=12500),
            "dep_k_2.w-0.0": up(10000),
            "dep_k_2.w-1.0": up(12500),
        },
        final=final("2", "2", "successful", agent("v2", "2"), agent("v2", "2")),
        measures=(1, 0, 0.0),
    )
    assert twice.dumps() == once.dumps()


def test_the_same_canary_redeployed_while_awaiting_promotion_changes_nothing_and_promote_still_works() -> None:
    result = run([deploy(0, "v1"), deploy(10000, "v2", **CANARY), deploy(13000, "v2", **CANARY), act(14000, "promote")])
    expect(
        result,
        deployments=[*V1_DONE, ("successful", DONE, 6500.0)],
        instances={
            "dep_k_1.w-0.0": up(0, stopped=14000),
            "dep_k_1.w-1.0": up(0, stopped=14000),
            "dep_k_2.w-0.0": life(10000, 11000, 12500, role="canary", promoted=14000, serving=[(14000, None)]),
            "dep_k_2.w-1.0": up(14000),
        },
        final=final("2", "2", "successful", agent("v2", "2"), agent("v2", "2")),
        measures=(1, 0, 0.0),
    )
    assert len(result.versions[KEY]) == 2


def test_the_same_spec_with_another_agent_level_policy_cancels_and_rolls_only_what_does_not_run_it() -> None:
    """w-0 already runs v2 (placed by the cancelled deployment, judged later): only w-1 is changed."""
    result = run([deploy(0, "v1"), deploy(10000, "v2"), deploy(11200, "v2", max_parallel=2)])
    expect(
        result,
        deployments=[*V1_DONE, ("cancelled", CANCELLED, 1200.0), ("successful", DONE, 2500.0)],
        instances={
            "dep_k_1.w-0.0": up(0, stopped=10000),
            "dep_k_1.w-1.0": up(0, stopped=11200),
            "dep_k_2.w-0.0": up(10000),
            "dep_k_3.w-1.0": up(11200),
        },
        final=final("3", "3", "successful", agent("v2", "2"), agent("v2", "3")),
        measures=(0, 0, 0.0),
    )
    assert result.deployments[2]["changed_agent_ids"] == ["w-1"]


def test_the_same_spec_after_success_is_a_noop() -> None:
    result = run([deploy(0, "v1"), deploy(10000, "v2"), deploy(20000, "v2")])
    expect(
        result,
        deployments=[*V1_DONE, ("successful", DONE, 5000.0), ("successful", NOOP, 0.0)],
        instances={
            "dep_k_1.w-0.0": up(0, stopped=10000),
            "dep_k_1.w-1.0": up(0, stopped=12500),
            "dep_k_2.w-0.0": up(10000),
            "dep_k_2.w-1.0": up(12500),
        },
        final=final("3", "3", "successful", agent("v2", "2"), agent("v2", "2")),
        measures=(1, 0, 0.0),
    )
    assert result.deployments[2]["mode"] == "noop"
    assert versions(result)[2] == ("3", True, "v2", "deploy")


def test_the_stable_spec_redeployed_mid_rollout_is_not_a_noop_and_replaces_only_the_rolled_agent() -> None:
    """v1 is what stable says, but w-0 runs v2 now: "runs now" decides, per agent."""
    result = run([deploy(0, "v1"), deploy(10000, "v2"), deploy(11200, "v1")])
    expect(
        result,
        deployments=[*V1_DONE, ("cancelled", CANCELLED, 1200.0), ("successful", DONE, 2500.0)],
        instances={
            "dep_k_1.w-0.0": up(0, stopped=10000),
            "dep_k_1.w-1.0": V1_UP,
            "dep_k_2.w-0.0": life(10000, 11000, stopped=11200, outcome="stopped"),
            "dep_k_3.w-0.0": up(11200),
        },
        final=final("3", "3", "successful", agent("v1", "3"), agent("v1", "1")),
        measures=(1, 0, 0.0),
    )
    assert (result.deployments[2]["mode"], result.deployments[2]["changed_agent_ids"]) == ("agent_level", ["w-0"])


def test_a_newer_blue_green_cancels_the_candidates_and_the_swap_keeps_everything_serving() -> None:
    result = run([deploy(0, "v1"), deploy(10000, "v2", **BLUE_GREEN), deploy(11200, "v3", **BLUE_GREEN)])
    stopped_candidate = life(10000, 11000, role="candidate", stopped=11200, outcome="stopped")
    candidate = life(11200, 12200, 13700, role="candidate", promoted=13700, serving=[(13700, None)])
    expect(
        result,
        deployments=[*V1_DONE, ("cancelled", CANCELLED, 1200.0), ("successful", DONE, 2500.0)],
        instances={
            "dep_k_1.w-0.0": up(0, stopped=13700),
            "dep_k_1.w-1.0": up(0, stopped=13700),
            "dep_k_2.w-0.0": stopped_candidate,
            "dep_k_2.w-1.0": stopped_candidate,
            "dep_k_3.w-0.0": candidate,
            "dep_k_3.w-1.0": candidate,
        },
        final=final("3", "3", "successful", agent("v3", "3"), agent("v3", "3")),
        measures=(2, 0, 0.0),
    )
    assert {r["job_id"] for r in result.instances if r["version"] == "3"} == {"job_k_3"}


# ---- dead and partly dead jobs ---------------------------------------------------------------------


def dying(image: str) -> JSON:
    """Every start fails at once; one quick in-place restart, no reschedule."""
    return manifest(image, restart={"attempts": 1, "delay_ms": 500}, reschedule=NO_RESCHEDULE)


def test_a_job_dead_from_the_start_redeployed_with_the_same_spec_goes_blue_green() -> None:
    """Each start exits at once (running 1 s, restart 1.5 s, running and failed for good 2.5 s); the first
    failure fails the deployment, the second lands in the same ms. The same spec again is not a noop (nothing
    runs it) and the dead job is replaced whole; the dead instances stop at the swap."""
    result = run(
        [deploy(0, "v1"), deploy(10000, "v1-fixed")],
        manifests={"v1": dying("w:1"), "v1-fixed": dying("w:1")},
        behaviors={"v1": {"start_failure": 1.0}},
    )
    dead = life(0, 1000, unhealthy=2500, stopped=12500, restarts=[1500], again=[None], outcome="unhealthy")
    candidate = life(10000, 11000, 12500, role="candidate", promoted=12500, serving=[(12500, None)])
    expect(
        result,
        deployments=[("failed", UNHEALTHY, 2500.0), ("successful", DONE, 2500.0)],
        instances={
            "dep_k_1.w-0.0": dead,
            "dep_k_1.w-1.0": dead,
            "dep_k_2.w-0.0": candidate,
            "dep_k_2.w-1.0": candidate,
        },
        final=final("2", "2", "successful", agent("v1-fixed", "2"), agent("v1-fixed", "2")),
        measures=(2, 2, 0.0),
    )
    assert (result.deployments[1]["mode"], result.deployments[1]["target_job_id"]) == ("blue_green", "job_k_2")
    assert versions(result) == [("1", False, "v1", "deploy"), ("2", True, "v1-fixed", "deploy")]


def test_a_partly_dead_job_redeployed_with_the_same_spec_updates_only_the_dead_agent() -> None:
    """v2's w-1 dies (running 13.5 s, restart 14 s, failed 15 s) and fails v2; w-0 runs v2 fine. The same
    spec again: w-1 has no live instance, so it alone is changed, and its dead instance stops at 20 s."""
    result = run(
        [deploy(0, "v1"), deploy(10000, "v2"), deploy(20000, "v2-fixed")],
        manifests={"v1": manifest("w:1"), "v2": dying("w:2"), "v2-fixed": dying("w:2")},
        behaviors={"v2": {"agents": {"w-1": {"start_failure": 1.0}}}},
    )
    expect(
        result,
        deployments=[*V1_DONE, ("failed", UNHEALTHY, 5000.0), ("successful", DONE, 2500.0)],
        instances={
            "dep_k_1.w-0.0": up(0, stopped=10000),
            "dep_k_1.w-1.0": up(0, stopped=12500),
            "dep_k_2.w-0.0": up(10000),
            "dep_k_2.w-1.0": life(
                12500, 13500, unhealthy=15000, stopped=20000, restarts=[14000], again=[None], outcome="unhealthy"
            ),
            "dep_k_3.w-1.0": up(20000),
        },
        final=final("3", "3", "successful", agent("v2", "2"), agent("v2-fixed", "3")),
        measures=(1, 1, 0.0),
    )
    assert (result.deployments[2]["mode"], result.deployments[2]["changed_agent_ids"]) == ("agent_level", ["w-1"])


def test_a_job_that_died_after_success_is_not_a_noop_and_is_replaced_whole() -> None:
    result = run(
        [deploy(0, "v1"), crash(10000, "w-0"), crash(10000, "w-1"), deploy(20000, "v1")],
        manifests={"v1": manifest("w:1", restart=NO_RESTART, reschedule=NO_RESCHEDULE)},
    )
    dead = life(0, 1000, 2500, unhealthy=10000, stopped=22500, serving=[(2500, 10000)], outcome="unhealthy")
    candidate = life(20000, 21000, 22500, role="candidate", promoted=22500, serving=[(22500, None)])
    expect(
        result,
        deployments=[*V1_DONE, ("successful", DONE, 2500.0)],
        instances={
            "dep_k_1.w-0.0": dead,
            "dep_k_1.w-1.0": dead,
            "dep_k_2.w-0.0": candidate,
            "dep_k_2.w-1.0": candidate,
        },
        final=final("2", "2", "successful", agent("v1", "2"), agent("v1", "2")),
        measures=(0, 2, 15000.0),
    )
    assert result.deployments[1]["mode"] == "blue_green"


# ---- verdicts after the end --------------------------------------------------------------------------


def test_an_instance_crashing_for_good_after_success_counts_everywhere() -> None:
    result = run(
        [deploy(0, "v1")],
        manifests={"v1": manifest("w:1", restart=NO_RESTART, reschedule=NO_RESCHEDULE)},
        behaviors={"v1": {"agents": {"w-1": {"crash_after_ms": 5000}}}},
    )
    expect(
        result,
        deployments=V1_DONE,
        instances={
            "dep_k_1.w-0.0": V1_UP,
            "dep_k_1.w-1.0": life(0, 1000, 2500, unhealthy=6000, serving=[(2500, 6000)], outcome="unhealthy"),
        },
        final=final("1", "1", "successful", agent("v1", "1"), agent("v1", "1", False, "unhealthy")),
        measures=(1, 1, 3500.0),
    )
    assert result.end_ms == 6000.0


def test_a_crash_action_naming_a_key_fails_only_that_keys_instance() -> None:
    """Keys k and o both have a w-0; the crash names k."""
    result = run(
        [deploy(0, "v1"), deploy(0, "o1"), crash(8000, "w-0", key=KEY)],
        manifests={
            "v1": manifest("w:1", restart=NO_RESTART, reschedule=NO_RESCHEDULE),
            "o1": manifest("o:1", key="o", restart=NO_RESTART, reschedule=NO_RESCHEDULE),
        },
    )
    expect(
        result,
        deployments=[*V1_DONE, ("successful", DONE, 2500.0)],
        instances={
            "dep_k_1.w-0.0": life(0, 1000, 2500, unhealthy=8000, serving=[(2500, 8000)], outcome="unhealthy"),
            "dep_k_1.w-1.0": V1_UP,
            "dep_o_2.w-0.0": V1_UP,
            "dep_o_2.w-1.0": V1_UP,
        },
        final={
            **final("1", "1", "successful", agent("v1", "1", False, "unhealthy"), agent("v1", "1")),
            **final("1", "1", "successful", agent("o1", "1"), agent("o1", "1"), key="o"),
        },
        measures=(1, 1, 5500.0),
    )


def test_an_instance_of_a_cancelled_deployment_is_judged_and_fails_after_the_cancel() -> None:
    """At 13 s both agents run v2 (w-1 placed, unjudged): the same spec with another policy cancels v2 and is
    a noop. w-1 turns healthy at 15 s for nobody's rollout, then crashes for good at 20 s."""
    result = run(
        [deploy(0, "v1"), deploy(10000, "v2"), deploy(13000, "v2", max_parallel=2), crash(20000, "w-1")],
        manifests={"v1": manifest("w:1"), "v2": manifest("w:2", restart=NO_RESTART, reschedule=NO_RESCHEDULE)},
    )
    expect(
        result,
        deployments=[*V1_DONE, ("cancelled", CANCELLED, 3000.0), ("successful", NOOP, 0.0)],
        instances={
            "dep_k_1.w-0.0": up(0, stopped=10000),
            "dep_k_1.w-1.0": up(0, stopped=12500),
            "dep_k_2.w-0.0": up(10000),
            "dep_k_2.w-1.0": life(12500, 13500, 15000, unhealthy=20000, serving=[(15000, 20000)], outcome="unhealthy"),
        },
        final=final("3", "3", "successful", agent("v2", "2"), agent("v2", "2", False, "unhealthy")),
        measures=(1, 1, 5000.0),
    )


def test_an_instance_of_a_cancelled_deployment_is_judged_unhealthy_at_its_deadline_after_the_cancel() -> None:
    """v2's w-0 never passes its check. Cancelled at 11.2 s by the same spec with another policy, which finds
    w-0 running v2 and rolls w-1 only; w-0's healthy deadline still falls at 15 s, after that success."""
    result = run(
        [deploy(0, "v1"), deploy(10000, "v2"), deploy(11200, "v2", max_parallel=2)],
        behaviors={"v2": {"agents": {"w-0": {"check_failure": 1.0}}}},
    )
    expect(
        result,
        deployments=[*V1_DONE, ("cancelled", CANCELLED, 1200.0), ("successful", DONE, 2500.0)],
        instances={
            "dep_k_1.w-0.0": up(0, stopped=10000),
            "dep_k_1.w-1.0": up(0, stopped=11200),
            "dep_k_2.w-0.0": life(10000, 11000, unhealthy=15000, outcome="unhealthy"),
            "dep_k_3.w-1.0": up(11200),
        },
        final=final("3", "3", "successful", agent("v2", "2", False, "unhealthy"), agent("v2", "3")),
        measures=(0, 1, 0.0),
    )
    assert result.end_ms == 15000.0


def test_a_promoted_canary_failing_is_replaced_and_the_replacement_fails_after_the_success() -> None:
    """v2's w-0 crashes for good 3 s after running. The canary serves from its promotion (13 s) to 14 s; its
    replacement (placed 14 s, counted in flight) is healthy at 16.5 s, which completes v2, and fails at 18 s."""
    result = run(
        [deploy(0, "v1"), deploy(10000, "v2", **CANARY), act(13000, "promote")],
        manifests={"v1": manifest("w:1"), "v2": manifest("w:2", restart=NO_RESTART)},
        behaviors={"v2": {"agents": {"w-0": {"crash_after_ms": 3000}}}},
    )
    expect(
        result,
        deployments=[*V1_DONE, ("successful", DONE, 6500.0)],
        instances={
            "dep_k_1.w-0.0": up(0, stopped=13000),
            "dep_k_1.w-1.0": up(0, stopped=13000),
            "dep_k_2.w-0.0": life(
                10000,
                11000,
                12500,
                role="canary",
                promoted=13000,
                unhealthy=14000,
                stopped=14000,
                serving=[(13000, 14000)],
                outcome="unhealthy",
            ),
            "dep_k_2.w-1.0": up(13000),
            "dep_k_2.w-0.1": life(14000, 15000, 16500, unhealthy=18000, serving=[(16500, 18000)], outcome="unhealthy"),
        },
        final=final("2", "2", "successful", agent("v2", "2", False, "unhealthy"), agent("v2", "2")),
        measures=(0, 2, 2500.0),
    )
    assert types(result, 1).count("instance_unhealthy") == 1


def test_an_instance_failing_in_the_same_ms_as_the_failure_that_ended_its_deployment() -> None:
    """v2's w-0 serves from 12.5 s and crashes for good at 13.5 s; w-1, placed at 12.5 s, fails its only
    start at 13.5 s too. One verdict fails the deployment; the other is recorded all the same."""
    result = run(
        [deploy(0, "v1"), deploy(10000, "v2")],
        manifests={"v1": manifest("w:1"), "v2": manifest("w:2", restart=NO_RESTART, reschedule=NO_RESCHEDULE)},
        behaviors={"v2": {"agents": {"w-0": {"crash_after_ms": 2500}, "w-1": {"start_failure": 1.0}}}},
    )
    expect(
        result,
        deployments=[*V1_DONE, ("failed", UNHEALTHY, 3500.0)],
        instances={
            "dep_k_1.w-0.0": up(0, stopped=10000),
            "dep_k_1.w-1.0": up(0, stopped=12500),
            "dep_k_2.w-0.0": life(10000, 11000, 12500, unhealthy=13500, serving=[(12500, 13500)], outcome="unhealthy"),
            "dep_k_2.w-1.0": life(12500, 13500, unhealthy=13500, outcome="unhealthy"),
        },
        final=final("1", "1", "failed", agent("v2", "2", False, "unhealthy"), agent("v2", "2", False, "unhealthy")),
        measures=(0, 2, 1000.0),
    )


def test_an_old_instance_crashing_while_a_canary_awaits_promotion() -> None:
    result = run(
        [deploy(0, "v1"), deploy(10000, "v2", **CANARY), crash(14000, "w-1")],
        manifests={"v1": manifest("w:1", restart=NO_RESTART, reschedule=NO_RESCHEDULE), "v2": manifest("w:2")},
    )
    expect(
        result,
        deployments=[*V1_DONE, ("awaiting_promotion", AWAITING, None)],
        instances={
            "dep_k_1.w-0.0": V1_UP,
            "dep_k_1.w-1.0": life(0, 1000, 2500, unhealthy=14000, serving=[(2500, 14000)], outcome="unhealthy"),
            "dep_k_2.w-0.0": life(10000, 11000, 12500, role="canary"),
        },
        final=final("1", "1", "awaiting_promotion", agent("v1", "1"), agent("v1", "1", False, "unhealthy")),
        measures=(1, 1, 11500.0),
    )
    assert "instance_unhealthy" not in types(result, 1)


def test_an_old_instance_crashing_during_a_rolling_update_stays_unhealthy_after_it_is_replaced() -> None:
    result = run(
        [deploy(0, "v1"), deploy(10000, "v2"), crash(11000, "w-1")],
        manifests={"v1": manifest("w:1", restart=NO_RESTART, reschedule=NO_RESCHEDULE), "v2": manifest("w:2")},
    )
    expect(
        result,
        deployments=[*V1_DONE, ("successful", DONE, 5000.0)],
        instances={
            "dep_k_1.w-0.0": up(0, stopped=10000),
            "dep_k_1.w-1.0": life(
                0, 1000, 2500, unhealthy=11000, stopped=12500, serving=[(2500, 11000)], outcome="unhealthy"
            ),
            "dep_k_2.w-0.0": up(10000),
            "dep_k_2.w-1.0": up(12500),
        },
        final=final("2", "2", "successful", agent("v2", "2"), agent("v2", "2")),
        measures=(0, 1, 8500.0),
    )


def test_a_canary_failing_while_awaiting_promotion_goes_back_to_running_and_is_replaced_once() -> None:
    """The canary crashes for good 3 s after running (14 s): back to running, a replacement canary (healthy
    16.5 s, awaiting again) crashes at 18 s, no reschedule left: failed, the canary stopped."""
    result = run(
        [deploy(0, "v1"), deploy(10000, "v2", **CANARY)],
        manifests={"v1": manifest("w:1"), "v2": manifest("w:2", restart=NO_RESTART)},
        behaviors={"v2": {"agents": {"w-0": {"crash_after_ms": 3000}}}},
    )
    expect(
        result,
        deployments=[*V1_DONE, ("failed", UNHEALTHY, 8000.0)],
        instances={
            "dep_k_1.w-0.0": V1_UP,
            "dep_k_1.w-1.0": V1_UP,
            "dep_k_2.w-0.0": life(
                10000, 11000, 12500, role="canary", unhealthy=14000, stopped=14000, outcome="unhealthy"
            ),
            "dep_k_2.w-0.1": life(
                14000, 15000, 16500, role="canary", unhealthy=18000, stopped=18000, outcome="unhealthy"
            ),
        },
        final=final("1", "1", "failed", agent("v1", "1"), agent("v1", "1")),
        measures=(2, 2, 0.0),
    )
    assert types(result, 1).count("canary_ready") == 2


# ---- in-place restarts -------------------------------------------------------------------------------


def test_an_in_place_restart_during_a_rollout_opens_a_serving_gap() -> None:
    """Three agents, one at a time. v2's w-0 crashes at 13 s (restart 13.5 s, running 14.5 s, passing 15 s):
    only v1's w-2 serves from 13 s to 15 s. Without the crash min_serving would be 2."""
    result = run(
        [deploy(0, "v1"), deploy(10000, "v2"), crash(13000, "w-0")],
        manifests={"v1": manifest("w:1", count=3), "v2": manifest("w:2", count=3, restart=QUICK_RESTART)},
    )
    expect(
        result,
        deployments=[*V1_DONE, ("successful", DONE, 7500.0)],
        instances={
            "dep_k_1.w-0.0": up(0, stopped=10000),
            "dep_k_1.w-1.0": up(0, stopped=12500),
            "dep_k_1.w-2.0": up(0, stopped=15000),
            "dep_k_2.w-0.0": life(
                10000, 11000, 12500, restarts=[13500], again=[15000], serving=[(12500, 13000), (15000, None)]
            ),
            "dep_k_2.w-1.0": up(12500),
            "dep_k_2.w-2.0": up(15000),
        },
        final={
            KEY: {
                "current_version": "2",
                "stable_version": "2",
                "status": "successful",
                "agents": {f"w-{i}": agent("v2", "2") for i in range(3)},
            }
        },
        measures=(1, 0, 0.0),
    )


def test_a_canary_promoted_during_its_restart_serves_only_once_it_passes_again() -> None:
    """The crash at 13 s hits both w-0s: v1's (stopped by the promotion at 14 s, mid-restart) and the canary's
    (restart 13.5 s, running 14.5 s, passing 15 s). Promoted at 14 s, it serves from 15 s; w-1 rolls at 14 s."""
    result = run(
        [deploy(0, "v1"), deploy(10000, "v2", **CANARY), crash(13000, "w-0"), act(14000, "promote")],
        manifests={"v1": manifest("w:1", restart=QUICK_RESTART), "v2": manifest("w:2", restart=QUICK_RESTART)},
    )
    expect(
        result,
        deployments=[*V1_DONE, ("successful", DONE, 6500.0)],
        instances={
            "dep_k_1.w-0.0": life(
                0, 1000, 2500, stopped=14000, restarts=[13500], again=[None], serving=[(2500, 13000)], outcome="stopped"
            ),
            "dep_k_1.w-1.0": up(0, stopped=14000),
            "dep_k_2.w-0.0": life(
                10000,
                11000,
                12500,
                role="canary",
                promoted=14000,
                restarts=[13500],
                again=[15000],
                serving=[(15000, None)],
            ),
            "dep_k_2.w-1.0": up(14000),
        },
        final=final("2", "2", "successful", agent("v2", "2"), agent("v2", "2")),
        measures=(0, 0, 0.0),
    )


def test_a_restart_before_the_verdict_restarts_the_healthy_clock() -> None:
    """Crash at 11.2 s, before the check passes: restart 11.7 s, running 12.7 s, passing 13.2 s, healthy
    14.2 s; only then does w-1 roll."""
    result = run(
        [deploy(0, "v1"), deploy(10000, "v2"), crash(11200, "w-0")],
        manifests={"v1": manifest("w:1"), "v2": manifest("w:2", restart=QUICK_RESTART)},
    )
    expect(
        result,
        deployments=[*V1_DONE, ("successful", DONE, 6700.0)],
        instances={
            "dep_k_1.w-0.0": up(0, stopped=10000),
            "dep_k_1.w-1.0": up(0, stopped=14200),
            "dep_k_2.w-0.0": life(10000, 11000, 14200, restarts=[11700], again=[14200], serving=[(14200, None)]),
            "dep_k_2.w-1.0": up(14200),
        },
        final=final("2", "2", "successful", agent("v2", "2"), agent("v2", "2")),
        measures=(1, 0, 0.0),
    )


def test_restarts_used_up_during_a_rollout_make_it_unhealthy_and_a_replacement_finishes_the_job() -> None:
    result = run(
        [deploy(0, "v1"), deploy(10000, "v2"), crash(11200, "w-0"), crash(13000, "w-0")],
        manifests={"v1": manifest("w:1"), "v2": manifest("w:2", restart={"attempts": 1, "delay_ms": 500})},
    )
    expect(
        result,
        deployments=[*V1_DONE, ("successful", DONE, 8000.0)],
        instances={
            "dep_k_1.w-0.0": up(0, stopped=10000),
            "dep_k_1.w-1.0": up(0, stopped=15500),
            "dep_k_2.w-0.0": life(
                10000, 11000, unhealthy=13000, stopped=13000, restarts=[11700], again=[None], outcome="unhealthy"
            ),
            "dep_k_2.w-0.1": up(13000),
            "dep_k_2.w-1.0": up(15500),
        },
        final=final("2", "2", "successful", agent("v2", "2"), agent("v2", "2")),
        measures=(1, 1, 0.0),
    )


def test_a_restart_after_success_lowers_min_serving_but_is_no_verdict() -> None:
    result = run(
        [deploy(0, "v1"), crash(20000, "w-1")],
        manifests={"v1": manifest("w:1", restart=QUICK_RESTART)},
    )
    expect(
        result,
        deployments=V1_DONE,
        instances={
            "dep_k_1.w-0.0": V1_UP,
            "dep_k_1.w-1.0": life(
                0, 1000, 2500, restarts=[20500], again=[22000], serving=[(2500, 20000), (22000, None)]
            ),
        },
        final=final("1", "1", "successful", agent("v1", "1"), agent("v1", "1")),
        measures=(1, 0, 0.0),
    )


def test_every_restart_records_when_it_passed_again_and_a_final_crash_counts_every_serving_interval() -> None:
    """Crash 20 s (restart 20.5 s, running 21.5 s), crash again 21.6 s before passing (restart 22.1 s,
    passing 23.6 s), and at 30 s with no restart left: exposure 17.5 s + 6.4 s."""
    result = run(
        [deploy(0, "v1"), crash(20000, "w-1"), crash(21600, "w-1"), crash(30000, "w-1")],
        manifests={"v1": manifest("w:1", restart=QUICK_RESTART, reschedule=NO_RESCHEDULE)},
    )
    expect(
        result,
        deployments=V1_DONE,
        instances={
            "dep_k_1.w-0.0": V1_UP,
            "dep_k_1.w-1.0": life(
                0,
                1000,
                2500,
                unhealthy=30000,
                restarts=[20500, 22100],
                again=[None, 23600],
                serving=[(2500, 20000), (23600, 30000)],
                outcome="unhealthy",
            ),
        },
        final=final("1", "1", "successful", agent("v1", "1"), agent("v1", "1", False, "unhealthy")),
        measures=(1, 1, 23900.0),
    )


# ---- batch jobs --------------------------------------------------------------------------------------

BATCH = {"b1": manifest("b:1", job_type="batch"), "b2": manifest("b:2", job_type="batch")}


def batch(placed: float, **changes: Any) -> JSON:
    """A batch agent that runs 3 s: running 1 s after placement, judged healthy at 2.5 s, completed at 4 s."""
    row = life(placed, placed + 1000, placed + 2500, completed=placed + 4000, serving=[(placed + 2500, placed + 4000)])
    return {**row, "outcome": "completed", **changes}


def test_the_first_batch_deploy_is_successful_at_once_and_its_agents_complete() -> None:
    result = run([deploy(0, "b1")], manifests=BATCH, behaviors={"b1": {"run_ms": 3000}})
    expect(
        result,
        deployments=[("successful", DONE, 0.0)],
        instances={"dep_k_1.w-0.0": batch(0), "dep_k_1.w-1.0": batch(0)},
        final=final("1", "1", "successful", *[agent("b1", "1", True, "completed")] * 2),
        measures=(0, 0, 0.0),
    )
    assert types(result, 0) == ["created", "successful"]
    assert result.end_ms == 4000.0


def test_batch_reruns_record_versions_beside_the_completed_jobs_even_for_the_same_spec() -> None:
    result = run(
        [deploy(0, "b1"), deploy(10000, "b2"), deploy(20000, "b1")],
        manifests=BATCH,
        behaviors={"default": {**STEADY, "run_ms": 3000}},
    )
    expect(
        result,
        deployments=[("successful", DONE, 0.0), ("version_recorded", RERUN, 0.0), ("version_recorded", RERUN, 0.0)],
        instances={
            "dep_k_1.w-0.0": batch(0),
            "dep_k_1.w-1.0": batch(0),
            "dep_k_2.w-0.0": batch(10000),
            "dep_k_2.w-1.0": batch(10000),
            "dep_k_3.w-0.0": batch(20000),
            "dep_k_3.w-1.0": batch(20000),
        },
        final=final("3", "1", "version_recorded", *[agent("b1", "3", True, "completed")] * 2),
        measures=(0, 0, 0.0),
    )
    assert versions(result) == [("1", True, "b1", "deploy"), ("2", False, "b2", "deploy"), ("3", False, "b1", "deploy")]
    assert [d["target_job_id"] for d in result.deployments] == ["job_k_1", "job_k_2", "job_k_3"]
    assert "deployment_cancelled" not in {e["type"] for e in result.events}


def test_a_batch_rerun_while_the_first_job_runs_leaves_it_running_to_completion() -> None:
    result = run(
        [deploy(0, "b1"), deploy(10000, "b1")],
        manifests=BATCH,
        behaviors={"b1": {"run_ms": 30000}},
    )
    expect(
        result,
        deployments=[("successful", DONE, 0.0), ("version_recorded", RERUN, 0.0)],
        instances={
            "dep_k_1.w-0.0": batch(0, completed_ms=31000, discoverable_ms=[[2500, 31000]]),
            "dep_k_1.w-1.0": batch(0, completed_ms=31000, discoverable_ms=[[2500, 31000]]),
            "dep_k_2.w-0.0": batch(10000, completed_ms=41000, discoverable_ms=[[12500, 41000]]),
            "dep_k_2.w-1.0": batch(10000, completed_ms=41000, discoverable_ms=[[12500, 41000]]),
        },
        final=final("2", "1", "version_recorded", *[agent("b1", "2", True, "completed")] * 2),
        measures=(0, 0, 0.0),
    )


def test_a_batch_agent_exiting_non_zero_every_run_uses_its_restarts_and_fails() -> None:
    """w-0 exits non-zero 2 s into every run, before its 3 s of work are done: restarts at 3.5 s and 7 s,
    failed at 10 s. The deployment stays successful; w-1 completes."""
    result = run(
        [deploy(0, "b1")],
        manifests={"b1": manifest("b:1", job_type="batch", restart=QUICK_RESTART)},
        behaviors={"b1": {"run_ms": 3000, "agents": {"w-0": {"crash_after_ms": 2000}}}},
    )
    expect(
        result,
        deployments=[("successful", DONE, 0.0)],
        instances={
            "dep_k_1.w-0.0": life(
                0,
                1000,
                2500,
                unhealthy=10000,
                restarts=[3500, 7000],
                again=[5000, 8500],
                serving=[(2500, 3000), (5000, 6500), (8500, 10000)],
                outcome="unhealthy",
            ),
            "dep_k_1.w-1.0": batch(0),
        },
        final=final("1", "1", "successful", agent("b1", "1", False, "unhealthy"), agent("b1", "1", True, "completed")),
        measures=(0, 1, 3500.0),
    )


def test_a_batch_agent_crashing_once_restarts_and_then_completes() -> None:
    """Crash at 2 s, before its verdict: restart 2.5 s, running 3.5 s, healthy 5 s, completed 6.5 s."""
    result = run(
        [deploy(0, "b1"), crash(2000, "w-0")],
        manifests={"b1": manifest("b:1", job_type="batch", restart=QUICK_RESTART)},
        behaviors={"b1": {"run_ms": 3000}},
    )
    expect(
        result,
        deployments=[("successful", DONE, 0.0)],
        instances={
            "dep_k_1.w-0.0": life(
                0,
                1000,
                5000,
                completed=6500,
                restarts=[2500],
                again=[5000],
                serving=[(5000, 6500)],
                outcome="completed",
            ),
            "dep_k_1.w-1.0": batch(0),
        },
        final=final("1", "1", "successful", *[agent("b1", "1", True, "completed")] * 2),
        measures=(0, 0, 0.0),
    )
