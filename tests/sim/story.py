"""One check that a simulation result tells one story: `final`, `instances` and `metrics` agree.

It recomputes every metric by brute force from the instance rows (counting at each time where anything
changes), independently of `sim.metrics`, and checks the rows against themselves and against `final`.
"""

from __future__ import annotations

from typing import Any

from sim import Result

JSON = dict[str, Any]


def serving_at(rows: list[JSON], key: str, t: float) -> int:
    """How many instances of `key` a normal lookup returned just after `t`."""
    return sum(
        1
        for row in rows
        if row["deployment_key"] == key
        for start, end in row["discoverable_ms"]
        if start <= t and (end is None or end > t)
    )


def brute_min_serving(result: Result) -> int | None:
    key_of = {d["deployment_id"]: d["deployment_key"] for d in result.deployments}
    first_success: dict[str, float] = {}
    for event in result.events:
        if event["type"] == "deployment_successful":
            key = key_of[event["deployment_id"]]
            first_success[key] = min(first_success.get(key, event["t_ms"]), event["t_ms"])
    lows = []
    for key, first in first_success.items():
        times = {first} | {
            t
            for row in result.instances
            for interval in row["discoverable_ms"]
            for t in interval
            if t is not None and t >= first
        }
        lows.append(min(serving_at(result.instances, key, t) for t in times))
    return min(lows) if lows else None


def brute_exposure(result: Result) -> float:
    return float(
        sum(
            (end if end is not None else result.end_ms) - start
            for row in result.instances
            if row["unhealthy_ms"] is not None
            for start, end in row["discoverable_ms"]
        )
    )


def assert_one_story(result: Result) -> None:
    rows = result.instances
    for row in rows:
        intervals = row["discoverable_ms"]
        assert len(row["restart_ms"]) == row["restarts"] == len(row["passing_again_ms"]), row
        if row["unhealthy_ms"] is not None:
            assert row["outcome"] == "unhealthy", row
            assert all(end is not None and end <= row["unhealthy_ms"] for _, end in intervals), row
        if intervals:
            assert row["healthy_ms"] is not None and intervals[0][0] >= row["healthy_ms"], row
            if row["role"] != "primary":
                assert row["promoted_ms"] is not None and intervals[0][0] >= row["promoted_ms"], row
        if row["stopped_ms"] is not None:
            assert all(end is not None and end <= row["stopped_ms"] for _, end in intervals), row
    for key, final in result.final.items():
        live = {r["instance_id"]: r for r in rows if r["deployment_key"] == key and r["stopped_ms"] is None}
        live_agents = {r["agent_id"] for r in live.values()}
        assert set(final["agents"]) == live_agents, (key, final["agents"])
        for agent_id, agent in final["agents"].items():
            candidates = [r for r in live.values() if r["agent_id"] == agent_id and r["version"] == agent["version"]]
            assert any(r["outcome"] == agent["outcome"] for r in candidates), (agent_id, agent)
            verdict = {"unhealthy": False, "healthy": True}.get(agent["outcome"])
            if agent["outcome"] != "completed":
                assert agent["healthy"] == verdict, (agent_id, agent)
    metrics = result.metrics
    assert metrics["unhealthy_instances"] == sum(1 for r in rows if r["unhealthy_ms"] is not None)
    assert metrics["exposure_ms"] == brute_exposure(result)
    assert metrics["min_serving"] == brute_min_serving(result)
