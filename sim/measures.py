"""What a sweep records of one run: its outcome and a few numbers, all read from the result.

The rollout under test is the last deployment that a `deploy` action created (not a rollback, nor an
auto-revert's redeploy), across keys in creation order. Its outcome is its final status (`successful`,
`failed`, `cancelled`, `version_recorded`, or still `running` / `awaiting_promotion` / `paused` when the
run ended first), except `reverted` when its failure triggered an auto-revert; `none` when no deployment was
created. `duration_ms` is its time from creation to a terminal status (missing while still active).
"""

from __future__ import annotations

from typing import Any

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
