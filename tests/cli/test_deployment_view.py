"""What the status and watch views read from a record: progress per role, the deadline, the next command."""

from __future__ import annotations

from typing import Any

import pytest

from mn_deploy.deployment_cli import update_policy_json
from mn_deploy.deployment_view import RoleProgress, deadline, event_line, next_command, role_progress


def placed(agent: str, attempt: int, role: str) -> dict[str, Any]:
    return {"type": "deployment_instance_placed", "instance_id": f"{agent}.{attempt}", "agent_id": agent, "role": role}


def verdict(agent: str, attempt: int, healthy: bool = True) -> dict[str, Any]:
    kind = "deployment_instance_healthy" if healthy else "deployment_instance_unhealthy"
    return {"type": kind, "instance_id": f"{agent}.{attempt}", "agent_id": agent}


def record(mode: str, total: int, canaries: int, events: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    counters = {"desired_total": total, "desired_canaries": canaries, "placed": 0, "healthy": 0, "unhealthy": 0}
    start = {"type": "deployment_started"}
    return {"mode": mode, "counters": counters, "events": [start, *events], **fields}


def test_blue_green_candidates_are_the_whole_job_until_promotion() -> None:
    events = [placed(a, 0, "candidate") for a in ("a", "b", "c")] + [verdict("a", 0), verdict("b", 0)]
    trial = record("blue_green", 3, 0, events)
    promoted = record("blue_green", 3, 0, [*events, verdict("c", 0), {"type": "deployment_promoted"}])

    assert role_progress(trial) == [RoleProgress("candidate", 2, 3, 3)]
    assert role_progress(promoted) == [RoleProgress("primary", 3, 3, 3)]


def test_agent_level_canaries_and_the_primaries_still_to_roll() -> None:
    events = [placed("a", 0, "canary"), verdict("a", 0)]

    assert role_progress(record("agent_level", 3, 1, events)) == [
        RoleProgress("canary", 1, 1, 1),
        RoleProgress("primary", 0, 0, 2),
    ]


def test_a_replaced_instance_counts_by_its_newest_attempt() -> None:
    events = [placed("a", 0, "primary"), verdict("a", 0, healthy=False), placed("a", 1, "primary")]

    assert role_progress(record("initial", 1, 0, events)) == [RoleProgress("primary", 0, 1, 1)]
    assert role_progress(record("initial", 1, 0, [*events, verdict("a", 1)])) == [RoleProgress("primary", 1, 1, 1)]


def test_a_lost_instance_is_not_healthy_until_its_replacement_is() -> None:
    """R16: after the deployment, a primary lost for good, its replacement placed, then judged."""
    events = [placed("a", 0, "primary"), verdict("a", 0), {"type": "deployment_successful"}]
    lost = {"type": "deployment_instance_lost", "instance_id": "a.0", "agent_id": "a", "replacement_id": "a.1"}

    assert role_progress(record("initial", 1, 0, [*events, lost])) == [RoleProgress("primary", 0, 1, 1)]
    replaced = [*events, lost, placed("a", 1, "primary"), verdict("a", 1)]
    assert role_progress(record("initial", 1, 0, replaced)) == [RoleProgress("primary", 1, 1, 1)]


def test_a_record_that_lost_its_first_events_shows_the_counters_alone() -> None:
    truncated = record("agent_level", 300, 1, [placed("z", 0, "primary")])
    truncated["events"].pop(0)
    truncated["counters"].update(placed=320, healthy=250)

    assert role_progress(truncated) == [RoleProgress("all", 250, 300, 300)]


def test_nothing_rolls_for_a_noop_or_a_rerun() -> None:
    assert role_progress(record("noop", 0, 0, [])) == []


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"status": "running", "require_progress_by_ms": 1_000 + 3_725_000}, "1h 2m left"),
        ({"status": "running", "require_progress_by_ms": 1_000 + 44_500}, "45s left"),
        ({"status": "running", "require_progress_by_ms": 1_000}, "due now"),
        ({"status": "running", "require_progress_by_ms": None}, "starts at the first placement"),
        (
            {"status": "running", "policy": {"progress_deadline_ms": 0}},
            "none (the first unhealthy instance fails the deployment)",
        ),
        ({"status": "paused", "require_progress_by_ms": 5_000}, "not enforced while paused"),
        ({"status": "awaiting_promotion"}, "not enforced while awaiting promotion"),
        ({"status": "successful", "require_progress_by_ms": 5_000}, None),
    ],
)
def test_time_left_to_the_progress_deadline(fields: dict[str, Any], expected: str | None) -> None:
    assert deadline({"policy": {"progress_deadline_ms": 600_000}, **fields}, now_ms=1_000) == expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"status": "running"}, "watch app"),
        ({"status": "awaiting_promotion"}, "promote app"),
        ({"status": "paused"}, "resume app"),
        ({"status": "failed", "reverted_to_version": "1"}, "watch app"),
        ({"status": "failed", "stable_version": "1"}, "rollback app --version 1"),
        ({"status": "failed", "stable_version": None}, "deploy BUNDLE --key app"),
        ({"status": "cancelled"}, "status app"),
        ({"status": "successful"}, "history app"),
        ({"status": "version_recorded"}, "history app"),
    ],
)
def test_the_next_command(fields: dict[str, Any], expected: str) -> None:
    assert next_command({"deployment_key": "app", **fields}) == f"mn-deploy deployment {expected}"


def test_an_event_line_is_time_type_and_fields() -> None:
    event = {"type": "deployment_canary_ready", "timestamp": "T", "t_ms": 5, "version": "2", "canary_agent_ids": ["a"]}

    assert event_line(event) == "T deployment_canary_ready version=2, canary_agent_ids=a"


def test_only_the_policy_flags_given_are_sent() -> None:
    flags = {"strategy": None, "canary": 0, "auto_promote": False, "max_parallel": None}

    assert update_policy_json(flags) == '{"canary": 0, "auto_promote": false}'
    assert update_policy_json(dict.fromkeys(flags)) == ""
