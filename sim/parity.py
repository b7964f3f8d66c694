"""Parity: a replay's decisions against the recorded ones, deployment by deployment, event by event.

Two decisions are the same when their type and fields are (ids mapped between the worlds, see `sim.pairing`);
their times are compared apart: the largest difference is the skew. The first divergence is the earliest
decision where the two differ (or a recorded call the replay refused, or a placement the trace has no instance
for), so it names the cause rather than its consequences.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sim.recorded import RecordedDeployment
from sim.result import Result

Decisions = Sequence[tuple[float, Mapping[str, Any]]]


@dataclass(frozen=True, slots=True)
class Divergence:
    """Where the replay first decided otherwise. `recorded`/`replayed` are the two decisions at `index` of
    `deployment` (the recorded id), None where one side has none; `reason` says it in one line."""

    deployment: str | None
    index: int | None
    t_ms: float
    reason: str
    recorded: Mapping[str, Any] | None = None
    replayed: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "index": self.index,
            "t_ms": self.t_ms,
            "reason": self.reason,
            "recorded": self.recorded,
            "replayed": self.replayed,
        }


@dataclass(frozen=True, slots=True)
class Parity:
    """The outcome of a replay: whether every decision came out the same, how many were compared, the largest
    time skew among them, the first divergence, and the replay's own result."""

    identical: bool
    compared: int
    max_skew_ms: float
    divergence: Divergence | None
    result: Result
    warnings: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "identical": self.identical,
            "compared": self.compared,
            "max_skew_ms": self.max_skew_ms,
            "divergence": None if self.divergence is None else self.divergence.to_json(),
            "warnings": list(self.warnings),
            "result": self.result.to_json(),
        }


@dataclass(frozen=True, slots=True)
class Comparison:
    compared: int
    max_skew_ms: float
    divergences: list[Divergence]


def compare(
    recorded: Mapping[str, Sequence[RecordedDeployment]],
    replayed: Mapping[str, Sequence[Decisions]],
    translate: Callable[[Any], Any],
) -> Comparison:
    """Each key's deployments paired in creation order; in each, the decisions in order. `replayed` holds the
    replay's decisions per key (only up to the trace's end), `translate` maps their ids into the recorded ones."""
    compared, skew, divergences = 0, 0.0, []
    for key in sorted(set(recorded) | set(replayed)):
        ours, theirs = recorded.get(key, ()), replayed.get(key, ())
        for i in range(max(len(ours), len(theirs))):
            if i >= len(ours):
                if not theirs[i]:
                    continue  # created after the end of a cut trace: never recordable
                t, first = theirs[i][0]
                divergences.append(
                    Divergence(
                        None,
                        0,
                        t,
                        f"the replay created a deployment of {key} the trace does not have",
                        None,
                        translate(first),
                    )
                )
                continue
            deployment = ours[i]
            decisions = theirs[i] if i < len(theirs) else ()
            matched, worst, divergence = _walk(deployment, decisions, translate)
            compared, skew = compared + matched, max(skew, worst)
            if divergence is not None:
                divergences.append(divergence)
    return Comparison(compared, skew, divergences)


def _walk(
    deployment: RecordedDeployment, decisions: Decisions, translate: Callable[[Any], Any]
) -> tuple[int, float, Divergence | None]:
    skew = 0.0
    for j in range(max(len(deployment.decisions), len(decisions))):
        ours = deployment.decisions[j] if j < len(deployment.decisions) else None
        theirs = (decisions[j][0], translate(decisions[j][1])) if j < len(decisions) else None
        if ours is not None and theirs is not None and ours[1] == theirs[1]:
            skew = max(skew, abs(theirs[0] - ours[0]))
            continue
        t = min(side[0] for side in (ours, theirs) if side is not None)
        reason = (
            "the replay never made this decision"
            if theirs is None
            else "the trace has no such decision"
            if ours is None
            else "the replay decided otherwise"
        )
        divergence = Divergence(
            deployment.deployment_id,
            j,
            t,
            reason,
            None if ours is None else ours[1],
            None if theirs is None else theirs[1],
        )
        return j, skew, divergence
    return len(deployment.decisions), skew, None
