"""Deployment statuses (R12), what moves them, and what an operator is refused (R11): everything that changes a
deployment's status lives here, in one table (h11's `_state.py` rule).

`transition` is the one way to a new status. It reads `TABLE`; a trigger the table has no row for is refused with
the contract's exact message when it is an operator verb, and is a bug (TransitionError) when the core fires it.
A status is a StrEnum, so it equals its JSON string and records stay byte-identical.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum, StrEnum
from typing import Final, NamedTuple

from mn_deploy_core.errors import RefusedError


class Status(StrEnum):
    """A deployment's status (R12); the first three are active, the others terminal."""

    RUNNING = "running"
    AWAITING_PROMOTION = "awaiting_promotion"
    PAUSED = "paused"
    SUCCESSFUL = "successful"
    FAILED = "failed"
    CANCELLED = "cancelled"
    VERSION_RECORDED = "version_recorded"


ACTIVE: Final = frozenset({Status.RUNNING, Status.AWAITING_PROMOTION, Status.PAUSED})
TERMINAL: Final = frozenset(Status) - ACTIVE

# R12 descriptions (docs/rules.md R12); a failure's description is one of the three FAILED_* plus an R10 suffix.
RUNNING: Final = "Deployment is running"
AWAITING_PROMOTION: Final = "Deployment is running but requires manual promotion"
PENDING_AUTO_PROMOTION: Final = "Deployment is running pending automatic promotion"
PAUSED: Final = "Deployment is paused"
SUCCESSFUL: Final = "Deployment completed successfully"
NOOP: Final = "Deployment contained no runtime changes"
FAILED_UNHEALTHY: Final = "Failed due to unhealthy instances"
FAILED_DEADLINE: Final = "Failed due to progress deadline"
FAILED_BY_OPERATOR: Final = "Deployment marked as failed"
# not the reference's: a takeover finds an active deployment whose target version is not stored (takeover.py)
FAILED_VERSION_MISSING: Final = "Failed due to a missing version record"
CANCELLED: Final = "Cancelled due to newer version"
VERSION_RECORDED: Final = "Batch version recorded as rerun"


class Trigger(StrEnum):
    """Everything that changes a deployment's status. PROMOTE, PAUSE, RESUME and FAIL are operator verbs."""

    START = "start"  # a new rolling deployment (R3: initial, agent-level, blue-green)
    RERUN = "rerun"  # a new batch version recorded as a rerun (R3 step 1)
    NOOP = "noop"  # a new deployment with no runtime changes (R3 step 2)
    TRIAL_READY = "trial_ready"  # every trial instance healthy, promotion manual (R6, R7)
    TRIAL_FAILED = "trial_failed"  # an instance turned unhealthy; a trial awaiting promotion goes on running (R9)
    AUTO_PROMOTE = "auto_promote"  # every trial instance healthy, promotion automatic (R6, R7)
    PROMOTE = "promote"  # the operator promotes (R11)
    PAUSE = "pause"  # R11
    RESUME = "resume"  # R11
    SUCCEED = "succeed"  # every agent healthy at the target (R5)
    FAIL = "fail"  # unhealthy, progress deadline (R9) or the operator (R11)
    CANCEL = "cancel"  # a newer version of the key (R4)


class Rule(Enum):
    """A table target that is not a fixed status."""

    UNCHANGED = "unchanged"  # nothing changes: pause when paused, resume when not paused
    PREVIOUS = "previous"  # the status before the pause, which a pause keeps in `previous_status`
    BEHIND_PAUSE = "behind_pause"  # stays paused; the trigger moves the kept status instead


class State(NamedTuple):
    """A status and, while paused, the status a resume returns to."""

    status: Status
    previous_status: Status | None = None


# The participle of each operator verb, as refusals print it.
VERBS: Final[Mapping[Trigger, str]] = {
    Trigger.PROMOTE: "promoted",
    Trigger.PAUSE: "paused",
    Trigger.RESUME: "resumed",
    Trigger.FAIL: "failed",
}

# (status, trigger) -> the new status; status None is a deployment not yet created (R3 routes it).
# No row: refused for an operator verb, a bug otherwise.
TABLE: Final[Mapping[tuple[Status | None, Trigger], Status | Rule]] = {
    (None, Trigger.START): Status.RUNNING,
    (None, Trigger.RERUN): Status.VERSION_RECORDED,
    (None, Trigger.NOOP): Status.SUCCESSFUL,
    (Status.RUNNING, Trigger.TRIAL_READY): Status.AWAITING_PROMOTION,
    (Status.RUNNING, Trigger.TRIAL_FAILED): Rule.UNCHANGED,
    (Status.AWAITING_PROMOTION, Trigger.TRIAL_FAILED): Status.RUNNING,
    (Status.PAUSED, Trigger.TRIAL_FAILED): Rule.BEHIND_PAUSE,
    (Status.RUNNING, Trigger.AUTO_PROMOTE): Status.RUNNING,
    (Status.AWAITING_PROMOTION, Trigger.PROMOTE): Status.RUNNING,
    (Status.RUNNING, Trigger.PAUSE): Status.PAUSED,
    (Status.AWAITING_PROMOTION, Trigger.PAUSE): Status.PAUSED,
    (Status.PAUSED, Trigger.PAUSE): Rule.UNCHANGED,
    (Status.RUNNING, Trigger.RESUME): Rule.UNCHANGED,
    (Status.AWAITING_PROMOTION, Trigger.RESUME): Rule.UNCHANGED,
    (Status.PAUSED, Trigger.RESUME): Rule.PREVIOUS,
    (Status.RUNNING, Trigger.SUCCEED): Status.SUCCESSFUL,
    **{(status, Trigger.FAIL): Status.FAILED for status in ACTIVE},
    **{(status, Trigger.CANCEL): Status.CANCELLED for status in ACTIVE},
}


class TransitionError(Exception):
    """The core fired a trigger the table does not allow in this status: a bug, never a user's doing."""


def transition(deployment_id: str, status: str | None, trigger: Trigger, previous_status: str | None = None) -> State:
    """The state `trigger` moves a deployment to from `status` (None: not yet created) and `previous_status`.

    An unchanged result (`==` the state passed in) means nothing happens: an idempotent pause or resume, a trial
    failure while running. A pause keeps the status it interrupts; a resume returns to it (running when none was
    kept) and forgets it; a trial failure while paused moves the kept status. Every other move keeps
    `previous_status` as it was.

    Raises RefusedError, with the message of docs/rules.md R11, for an operator verb the status does not allow, and
    TransitionError for any other trigger the table has no row for.
    """
    if status is None:
        target = _target(deployment_id, None, trigger)
        assert isinstance(target, Status)  # a new deployment's rows all name a status
        return State(target)
    current = State(Status(status), None if previous_status is None else Status(previous_status))
    target = _target(deployment_id, current.status, trigger)
    if target is Rule.UNCHANGED:
        return current
    if target is Rule.PREVIOUS:
        return State(current.previous_status or Status.RUNNING)
    if target is Rule.BEHIND_PAUSE:
        if current.previous_status is None:
            return current
        kept = transition(deployment_id, current.previous_status, trigger)
        return State(current.status, kept.status)
    if target is Status.PAUSED:
        return State(target, current.status)
    return State(target, current.previous_status)


def _target(deployment_id: str, status: Status | None, trigger: Trigger) -> Status | Rule:
    target = TABLE.get((status, trigger))
    if target is not None:
        return target
    verb = VERBS.get(trigger)
    if verb is None or status is None:
        raise TransitionError(f"deployment {deployment_id} is {status or 'new'}; {trigger} does not apply")
    if status in TERMINAL:
        raise RefusedError(f"deployment {deployment_id} is {status}; it can't be {verb}")
    # every verb but promote has a row for every active status
    raise RefusedError(f"deployment is {status}, expected {Status.AWAITING_PROMOTION}")
