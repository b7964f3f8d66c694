"""Figures of merit of a run, computed from the result JSON alone (so saved results can be re-measured).

Serving means what a normal discovery lookup returns: a primary instance that is passing (a healthy verdict,
ready, checks passing; not in an in-place restart). The core records each instance's serving intervals as
they happen (`discoverable_ms`); every measure here reads those, so metrics and instance rows cannot
disagree.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

JSON = dict[str, Any]
Group = TypeVar("Group", bound=Hashable)
Steps = list[tuple[float, int]]
"""(time, count from then on), in time order."""
TERMINAL_EVENTS = frozenset(
    {
        "deployment_successful",
        "deployment_failed",
        "deployment_cancelled",
        "deployment_version_recorded",
        "deployment_noop",
    }
)


@dataclass(frozen=True, slots=True)
class Serving:
    """One instance's serving interval; `end` None means it still served when the run ended."""

    instance_id: str
    key: str
    manifest_name: str | None
    start: float
    end: float | None
    proved_unhealthy: bool


def _first(events: Iterable[Mapping[str, Any]], types: Iterable[str]) -> dict[str, float]:
    """Per deployment id, the time of its first event of one of `types`."""
    wanted = set(types)
    first: dict[str, float] = {}
    for event in events:
        if event["type"] in wanted:
            first.setdefault(event["deployment_id"], event["t_ms"])
    return first


def serving_intervals(instances: Sequence[Mapping[str, Any]]) -> list[Serving]:
    """Every interval in which an instance served, in instance order."""
    return [
        Serving(
            row["instance_id"],
            row["deployment_key"],
            row["manifest_name"],
            start,
            end,
            row["unhealthy_ms"] is not None,
        )
        for row in instances
        for start, end in row["discoverable_ms"]
    ]


def serving_steps(intervals: Iterable[Serving], group: Callable[[Serving], Group]) -> dict[Group, Steps]:
    """Per group, (time, serving count from then on) at every time the count may change."""
    deltas: dict[Group, dict[float, int]] = defaultdict(lambda: defaultdict(int))
    for interval in intervals:
        deltas[group(interval)][interval.start] += 1
        if interval.end is not None:
            deltas[group(interval)][interval.end] -= 1
    steps: dict[Group, Steps] = {}
    for name, changes in deltas.items():
        count = 0
        steps[name] = []
        for t in sorted(changes):
            count += changes[t]
            steps[name].append((t, count))
    return steps


def _lowest_after(steps: Sequence[tuple[float, int]], since: float) -> int:
    at_since = 0
    lowest: int | None = None
    for t, count in steps:
        if t <= since:
            at_since = count
        else:
            lowest = count if lowest is None else min(lowest, count)
    return at_since if lowest is None else min(lowest, at_since)


def min_serving(
    intervals: Sequence[Serving], deployments: Sequence[Mapping[str, Any]], events: Sequence[JSON]
) -> int | None:
    """The fewest serving primaries of any key at any time after that key's first successful deployment."""
    succeeded = _first(events, ("deployment_successful",))
    first_success: dict[str, float] = {}
    for d in deployments:
        if d["deployment_id"] in succeeded:
            key = d["deployment_key"]
            first_success[key] = min(
                first_success.get(key, succeeded[d["deployment_id"]]), succeeded[d["deployment_id"]]
            )
    steps = serving_steps(intervals, lambda s: s.key)
    lows = [_lowest_after(steps.get(key, []), since) for key, since in first_success.items()]
    return min(lows) if lows else None


def per_deployment(deployments: Sequence[Mapping[str, Any]]) -> list[JSON]:
    """Outcome (final status) and time from creation to a terminal status (None while still active)."""
    rows = []
    for d in deployments:
        events = d["events"]
        ended = next((e["t_ms"] for e in events if e["type"] in TERMINAL_EVENTS), None)
        duration = None if ended is None or not events else ended - events[0]["t_ms"]
        rows.append(
            {
                "deployment_id": d["deployment_id"],
                "version": d["target_version"],
                "outcome": d["status"],
                "duration_ms": duration,
            }
        )
    return rows


def compute_metrics(
    deployments: Sequence[Mapping[str, Any]],
    instances: Sequence[Mapping[str, Any]],
    events: Sequence[JSON],
    end_ms: float,
) -> JSON:
    intervals = serving_intervals(instances)
    exposure = sum((s.end if s.end is not None else end_ms) - s.start for s in intervals if s.proved_unhealthy)
    return {
        "per_deployment": per_deployment(deployments),
        "min_serving": min_serving(intervals, deployments, events),
        "unhealthy_instances": sum(1 for row in instances if row["unhealthy_ms"] is not None),
        "exposure_ms": float(exposure),
    }
