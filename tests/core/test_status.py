"""R11, R12: the status table alone: every status x trigger, allowed or refused with the contract's message.

Reference: SEMANTICS.md §10 (operator actions and their refusals), §11 (statuses and descriptions).
"""

from __future__ import annotations

import json

import pytest

from mn_deploy_core import status as descriptions
from mn_deploy_core.errors import RefusedError
from mn_deploy_core.status import ACTIVE, TERMINAL, State, Status, TransitionError, Trigger, transition

ID = "dep_agent-api_2"
T = Trigger
RUNNING, AWAITING, PAUSED = Status.RUNNING, Status.AWAITING_PROMOTION, Status.PAUSED
SUCCESSFUL, FAILED, CANCELLED, RECORDED = Status.SUCCESSFUL, Status.FAILED, Status.CANCELLED, Status.VERSION_RECORDED
KEPT = AWAITING  # the status a paused deployment keeps in the grid below: a paused canary awaiting promotion

BUG = "bug"  # the core fired a trigger the status does not allow
NOT_AWAITING = "not awaiting"  # promote on an active deployment not awaiting promotion
TERMINAL_REFUSAL = "terminal"  # an operator verb on a terminal deployment
Outcome = State | str

# fmt: off
COLUMNS = (
    T.START, T.RERUN, T.NOOP, T.TRIAL_READY, T.TRIAL_FAILED, T.AUTO_PROMOTE,
    T.PROMOTE, T.PAUSE, T.RESUME, T.SUCCEED, T.FAIL, T.CANCEL,
)
# One row per status (None: a deployment not yet created); a paused deployment keeps KEPT.
GRID: dict[Status | None, tuple[Outcome, ...]] = {
    None: (
        State(RUNNING), State(RECORDED), State(SUCCESSFUL), BUG, BUG, BUG,
        BUG, BUG, BUG, BUG, BUG, BUG,
    ),
    RUNNING: (
        BUG, BUG, BUG, State(AWAITING), State(RUNNING), State(RUNNING),
        NOT_AWAITING, State(PAUSED, RUNNING), State(RUNNING), State(SUCCESSFUL), State(FAILED), State(CANCELLED),
    ),
    AWAITING: (
        BUG, BUG, BUG, BUG, State(RUNNING), BUG,
        State(RUNNING), State(PAUSED, AWAITING), State(AWAITING), BUG, State(FAILED), State(CANCELLED),
    ),
    PAUSED: (
        BUG, BUG, BUG, BUG, State(PAUSED, RUNNING), BUG,
        NOT_AWAITING, State(PAUSED, KEPT), State(KEPT), BUG, State(FAILED, KEPT), State(CANCELLED, KEPT),
    ),
    **{
        status: (
            BUG, BUG, BUG, BUG, BUG, BUG,
            TERMINAL_REFUSAL, TERMINAL_REFUSAL, TERMINAL_REFUSAL, BUG, TERMINAL_REFUSAL, BUG,
        )
        for status in (SUCCESSFUL, FAILED, CANCELLED, RECORDED)
    },
}
# fmt: on
CELLS = [
    (status, trigger, outcome) for status, row in GRID.items() for trigger, outcome in zip(COLUMNS, row, strict=True)
]

PARTICIPLES = {T.PROMOTE: "promoted", T.PAUSE: "paused", T.RESUME: "resumed", T.FAIL: "failed"}


def previous_of(status: Status | None) -> Status | None:
    return KEPT if status is PAUSED else None


def test_r12_the_grid_covers_every_status_and_every_trigger() -> None:
    assert list(GRID) == [None, *Status]
    assert sorted(COLUMNS) == sorted(Trigger)
    assert all(len(row) == len(COLUMNS) for row in GRID.values())


@pytest.mark.parametrize(("status", "trigger", "outcome"), CELLS, ids=[f"{s}-{t}" for s, t, _ in CELLS])
def test_r12_every_status_and_trigger_is_allowed_or_refused_as_the_contract_says(
    status: Status | None, trigger: Trigger, outcome: Outcome
) -> None:
    previous = previous_of(status)
    if isinstance(outcome, State):
        assert transition(ID, status, trigger, previous) == outcome
        return
    if outcome == BUG:
        with pytest.raises(TransitionError):
            transition(ID, status, trigger, previous)
        return
    with pytest.raises(RefusedError) as info:
        transition(ID, status, trigger, previous)
    if outcome == TERMINAL_REFUSAL:
        assert info.value.message == f"deployment {ID} is {status}; it can't be {PARTICIPLES[trigger]}"
    else:
        assert info.value.message == f"deployment is {status}, expected awaiting_promotion"


@pytest.mark.parametrize("status", ["successful", "failed", "cancelled", "version_recorded"])
@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        (T.PROMOTE, "deployment dep_agent-api_2 is {}; it can't be promoted"),
        (T.PAUSE, "deployment dep_agent-api_2 is {}; it can't be paused"),
        (T.RESUME, "deployment dep_agent-api_2 is {}; it can't be resumed"),
        (T.FAIL, "deployment dep_agent-api_2 is {}; it can't be failed"),
    ],
)
def test_r11_operator_verbs_on_a_terminal_deployment_are_refused_with_the_exact_message(
    status: str, trigger: Trigger, message: str
) -> None:
    with pytest.raises(RefusedError) as info:
        transition(ID, status, trigger)
    assert info.value.message == message.format(status)


@pytest.mark.parametrize(("status", "previous"), [("running", None), ("paused", "awaiting_promotion")])
def test_r11_promote_from_an_active_status_other_than_awaiting_is_refused(status: str, previous: str | None) -> None:
    with pytest.raises(RefusedError) as info:
        transition(ID, status, T.PROMOTE, previous)
    assert info.value.message == f"deployment is {status}, expected awaiting_promotion"


@pytest.mark.parametrize("status", ["running", "awaiting_promotion"])
def test_r11_pause_keeps_the_status_it_interrupts_and_resume_returns_to_it(status: str) -> None:
    paused = transition(ID, status, T.PAUSE)
    assert paused == State(PAUSED, Status(status))
    assert transition(ID, paused.status, T.RESUME, paused.previous_status) == State(Status(status), None)


def test_r11_resume_without_a_kept_status_is_running() -> None:
    assert transition(ID, "paused", T.RESUME, None) == State(RUNNING)


@pytest.mark.parametrize(
    ("status", "trigger", "previous"),
    [
        ("paused", T.PAUSE, "running"),
        ("paused", T.PAUSE, "awaiting_promotion"),
        ("running", T.RESUME, None),
        ("awaiting_promotion", T.RESUME, None),
    ],
)
def test_r11_pause_when_paused_and_resume_when_not_paused_change_nothing(
    status: str, trigger: Trigger, previous: str | None
) -> None:
    assert transition(ID, status, trigger, previous) == (status, previous)


@pytest.mark.parametrize(
    ("previous", "kept"),
    [("awaiting_promotion", RUNNING), ("running", RUNNING), (None, None)],
)
def test_r11_canary_turning_unhealthy_while_paused_moves_the_status_resume_returns_to(
    previous: str | None, kept: Status | None
) -> None:
    after = transition(ID, "paused", T.TRIAL_FAILED, previous)
    assert after == State(PAUSED, kept)
    assert transition(ID, after.status, T.RESUME, after.previous_status) == State(RUNNING)


def test_r12_a_trial_failure_while_awaiting_promotion_runs_again_and_while_running_changes_nothing() -> None:
    assert transition(ID, "awaiting_promotion", T.TRIAL_FAILED) == State(RUNNING)
    assert transition(ID, "running", T.TRIAL_FAILED) == State(RUNNING)


@pytest.mark.parametrize("trigger", [T.FAIL, T.CANCEL])
def test_r12_ending_a_paused_deployment_leaves_its_kept_status_on_the_record(trigger: Trigger) -> None:
    assert transition(ID, "paused", trigger, "running").previous_status == RUNNING


def test_r12_strings_of_a_stored_record_come_back_as_statuses() -> None:
    after = transition(ID, "paused", T.RESUME, "awaiting_promotion")
    assert type(after.status) is Status
    assert after == ("awaiting_promotion", None)


def test_r12_triggers_the_core_fires_outside_the_table_are_bugs_not_refusals() -> None:
    for status, trigger in [
        ("running", T.START),
        ("paused", T.TRIAL_READY),
        ("awaiting_promotion", T.SUCCEED),
        ("awaiting_promotion", T.AUTO_PROMOTE),
        ("successful", T.CANCEL),
    ]:
        with pytest.raises(TransitionError) as info:
            transition(ID, status, trigger)
        assert not isinstance(info.value, RefusedError)
    with pytest.raises(TransitionError, match="is new; fail does not apply"):
        transition(ID, None, T.FAIL)


def test_r12_statuses_are_their_json_strings_and_split_into_active_and_terminal() -> None:
    assert [str(s) for s in Status] == [
        "running",
        "awaiting_promotion",
        "paused",
        "successful",
        "failed",
        "cancelled",
        "version_recorded",
    ]
    assert json.dumps({"status": Status.AWAITING_PROMOTION}) == '{"status": "awaiting_promotion"}'
    assert {"running", "awaiting_promotion", "paused"} == ACTIVE
    assert {"successful", "failed", "cancelled", "version_recorded"} == TERMINAL
    assert "paused" in ACTIVE and "version_recorded" in TERMINAL


def test_r12_descriptions_are_the_contract_text() -> None:
    assert descriptions.RUNNING == "Deployment is running"
    assert descriptions.AWAITING_PROMOTION == "Deployment is running but requires manual promotion"
    assert descriptions.PENDING_AUTO_PROMOTION == "Deployment is running pending automatic promotion"
    assert descriptions.PAUSED == "Deployment is paused"
    assert descriptions.SUCCESSFUL == "Deployment completed successfully"
    assert descriptions.NOOP == "Deployment contained no runtime changes"
    assert descriptions.FAILED_UNHEALTHY == "Failed due to unhealthy instances"
    assert descriptions.FAILED_DEADLINE == "Failed due to progress deadline"
    assert descriptions.FAILED_BY_OPERATOR == "Deployment marked as failed"
    assert descriptions.CANCELLED == "Cancelled due to newer version"
    assert descriptions.VERSION_RECORDED == "Batch version recorded as rerun"
