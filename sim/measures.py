"""What a sweep records of one run: its outcome and a few numbers, all read from the result.

The rollout under test is the last deployment that a `deploy` action created (not a rollback, nor an
auto-revert's redeploy), across keys in creation order. Its outcome is its final status (`successful`,
`failed`, `cancelled`, `version_recorded`, or still `running` / `awaiting_promotion` / `paused` when the
run ended first), except `reverted` when its failure triggered an auto-revert; `none` when no deployment was
created. `duration_ms` is its time from creation to a terminal status (missing while still active).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from mn_deploy_core.status import Status
from sim.metrics import serving_intervals, serving_steps
from sim.result import Result

OUTCOME = "outcome"
NUMBERS = ("duration_ms", "min_serving", "unhealthy_instances", "exposure_ms", "end_ms")
"""The numeric measures; `min_serving` is missing when no deployment ever succeeded."""
MEASURES = (OUTCOME, *NUMBERS)
REVERTED = "reverted"
NO_DEPLOYMENT = "none"


def _under_test(result: Result) -> dict[str, Any] | None:
    deployed = {
        (key, version["version"])
        for key, versions in result.versions.items()
        for version in versions
        if version["created_by"] == "deploy"
    }
    candidates = [d for d in result.deployments if (d["deployment_key"], d["target_version"]) in deployed]
    return candidates[-1] if candidates else None


def measure(result: Result) -> dict[str, Any]:
    """Every measure of MEASURES, by name."""
    deployment = _under_test(result)
    durations = {row["deployment_id"]: row["duration_ms"] for row in result.metrics["per_deployment"]}
    if deployment is None:
        outcome, duration = NO_DEPLOYMENT, None
    else:
        outcome = REVERTED if deployment["reverted_to_version"] is not None else deployment["status"]
        duration = durations[deployment["deployment_id"]]
    return {
        OUTCOME: outcome,
        "duration_ms": duration,
        "min_serving": result.metrics["min_serving"],
        "unhealthy_instances": result.metrics["unhealthy_instances"],
        "exposure_ms": result.metrics["exposure_ms"],
        "end_ms": result.end_ms,
    }


REVERTED_WITHIN = "reverted_within_ms"
MAX_BAD_SERVING = "max_bad_serving"
REVERSION = (REVERTED_WITHIN, MAX_BAD_SERVING)
"""The measures of how a failing version was contained (docs/verification.md). They are not sweep metrics:
a failed version never reverted gives `reverted_within_ms` infinity, which a mean cannot hold."""


def _failed_versions(result: Result) -> dict[tuple[str, str], dict[str, Any]]:
    """Each version that ends failed, by (key, version): the deployment that failed it."""
    return {(d["deployment_key"], d["target_version"]): d for d in result.deployments if d["status"] == Status.FAILED}


_COMPLETED = ("deployment_successful", "deployment_noop")
"""A revert whose agents all still run the stable spec (a failed canary, stopped) is a noop, complete at once."""


def _completed_at(deployment: Mapping[str, Any]) -> float | None:
    return next((e["t_ms"] for e in deployment["events"] if e["type"] in _COMPLETED), None)


def reverted_within_ms(result: Result) -> float:
    """The longest time from the deploy of a version that ends failed until a deployment reverting it (an
    auto-revert's or a rollback's, whose version names it as `rollback.from_version`) completed: every agent it
    changed back on the stable spec and passing. 0 when no version fails; infinity when one is never reverted."""
    reverts: dict[tuple[str, str], list[str]] = {}
    for key, versions in result.versions.items():
        for record in versions:
            if record["rollback"] is not None:
                reverts.setdefault((key, record["rollback"]["from_version"]), []).append(record["version"])
    completed: dict[tuple[str, str], float] = {}
    for d in result.deployments:
        done = _completed_at(d)
        if done is not None:
            completed.setdefault((d["deployment_key"], d["target_version"]), done)
    longest = 0.0
    for (key, version), failed in _failed_versions(result).items():
        deployed = failed["events"][0]["t_ms"]
        ends = [completed[(key, v)] for v in reverts.get((key, version), []) if (key, v) in completed]
        longest = max(longest, min(ends) - deployed if ends else math.inf)
    return longest


def max_bad_serving(result: Result) -> int:
    """The most instances of one version that ends failed that were primary and passing (discoverable) at the
    same moment; 0 when no version fails. An interval ending when another starts does not overlap it."""
    failed = _failed_versions(result)
    bad = {
        row["instance_id"]: (row["deployment_key"], row["version"])
        for row in result.instances
        if (row["deployment_key"], row["version"]) in failed
    }
    intervals = [s for s in serving_intervals(result.instances) if s.instance_id in bad]
    steps = serving_steps(intervals, lambda s: bad[s.instance_id])
    return max((count for changes in steps.values() for _, count in changes), default=0)


def reversion(result: Result) -> dict[str, float | int]:
    """Every measure of REVERSION, by name."""
    return {REVERTED_WITHIN: reverted_within_ms(result), MAX_BAD_SERVING: max_bad_serving(result)}
