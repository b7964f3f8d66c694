"""Metrics from a result built by hand, where every figure can be worked out on paper."""

from __future__ import annotations

from typing import Any

from sim import Result, load_scenario, run_scenario
from sim.metrics import Serving, compute_metrics, serving_intervals
from tests.sim.story import assert_one_story


def test_serving_intervals_are_the_recorded_discoverable_intervals(handmade: Result) -> None:
    intervals = {s.instance_id: s for s in serving_intervals(handmade.instances)}
    assert intervals == {
        "a1": Serving("a1", "k", "v1", 10_000.0, 120_000.0, False),
        "b1": Serving("b1", "k", "v1", 10_000.0, 120_000.0, False),
        "a2": Serving("a2", "k", "v2", 120_000.0, None, False),
        "b2": Serving("b2", "k", "v2", 140_000.0, 170_000.0, True),
    }


def test_metrics_of_the_handmade_run(handmade: Result) -> None:
    metrics = compute_metrics(handmade.deployments, handmade.instances, handmade.events, handmade.end_ms)
    assert metrics == {
        "per_deployment": [
            {"deployment_id": "dep_k_1", "version": "1", "outcome": "successful", "duration_ms": 10_000.0},
            {"deployment_id": "dep_k_2", "version": "2", "outcome": "successful", "duration_ms": 40_000.0},
        ],
        "min_serving": 1,
        "unhealthy_instances": 1,
        "exposure_ms": 30_000.0,
    }


def test_min_serving_is_none_before_any_success(handmade: Result) -> None:
    events = [e for e in handmade.events if e["type"] != "deployment_successful"]
    metrics = compute_metrics(handmade.deployments, handmade.instances, events, handmade.end_ms)
    assert metrics["min_serving"] is None


# ---- each definition on a run whose timeline is worked out by hand ----------------------------------
# Two workers, placed at 0: running at 1 s (start 1 s), ready and check passing at once, healthy after
# min_healthy 1 s, at 2 s, when version 1 succeeds. Crashes are injected by `crash` actions.


def two_workers(restart_attempts: int, *actions: dict[str, Any], reschedule_attempts: int = 0) -> Result:
    """Without reschedules by default: an instance lost for good after the success stays lost (R16)."""
    manifest = {
        "job_type": "service",
        "graph_id": "k",
        "deployment": {"key": "k"},
        "nodes": [
            {
                "node_id": "worker",
                "agent_type": "executor",
                "count": 2,
                "config": {"image": "w:1"},
                "services": [{"name": "api", "checks": [{"type": "http", "path": "/health"}]}],
            }
        ],
        "edges": [],
        "policies": {
            "update": {"min_healthy_ms": 1000, "healthy_deadline_ms": 5000, "progress_deadline_ms": 10000},
            "restart": {"attempts": restart_attempts, "delay_ms": 1000},
            "reschedule": {"attempts": reschedule_attempts},
        },
    }
    scenario = {
        "name": "two-workers",
        "manifests": {"v1": manifest},
        "behaviors": {"default": {"start_ms": 1000, "ready_ms": 0, "check_ms": 0}},
        "actions": [{"at_ms": 0, "deploy": "v1"}, *actions],
        "until_ms": 60_000,
    }
    result = run_scenario(load_scenario(scenario))
    assert_one_story(result)
    return result


def test_min_serving_counts_the_gap_of_an_in_place_restart() -> None:
    # worker-0 exits at 10 s, restarts after the 1 s delay (11 s), runs and passes again at 12 s
    result = two_workers(2, {"at_ms": 10_000, "crash": {"agent": "worker-0"}})
    first = result.instances[0]
    assert (first["restart_ms"], first["passing_again_ms"]) == ([11_000.0], [12_000.0])
    assert first["discoverable_ms"] == [[2000.0, 10_000.0], [12_000.0, None]]
    assert first["outcome"] == "healthy" and result.final["k"]["agents"]["worker-0"]["healthy"] is True
    assert result.metrics["min_serving"] == 1
    assert result.metrics["unhealthy_instances"] == 0 and result.metrics["exposure_ms"] == 0.0


def test_exposure_sums_the_serving_time_of_every_primary_that_proved_unhealthy() -> None:
    # no restarts: each crash fails its instance for good, after the deployment succeeded at 2 s
    crashes = ({"at_ms": 10_000, "crash": {"agent": "worker-0"}}, {"at_ms": 15_000, "crash": {"agent": "worker-1"}})
    result = two_workers(0, *crashes)
    assert [(i["unhealthy_ms"], i["outcome"]) for i in result.instances] == [
        (10_000.0, "unhealthy"),
        (15_000.0, "unhealthy"),
    ]
    assert [a["healthy"] for a in result.final["k"]["agents"].values()] == [False, False]
    assert result.metrics["exposure_ms"] == (10_000 - 2000) + (15_000 - 2000)
    assert result.metrics["unhealthy_instances"] == 2
    assert result.metrics["min_serving"] == 0


def test_a_lost_primary_is_replaced_and_serving_counts_the_gap_until_its_replacement_serves() -> None:
    """worker-0 crashes for good at 10 s; its replacement, placed at once, runs at 11 s and is healthy (serving)
    at 12 s: one agent serves from 10 s to 12 s, and only the lost instance proved unhealthy (R16)."""
    result = two_workers(0, {"at_ms": 10_000, "crash": {"agent": "worker-0"}}, reschedule_attempts=1)
    rows = [(i["instance_id"], i["placed_ms"], i["healthy_ms"], i["outcome"]) for i in result.instances]
    assert rows == [
        ("dep_k_1.worker-0.0", 0.0, 2000.0, "unhealthy"),
        ("dep_k_1.worker-1.0", 0.0, 2000.0, "healthy"),
        ("dep_k_1.worker-0.1", 10_000.0, 12_000.0, "healthy"),
    ]
    assert [i["discoverable_ms"] for i in result.instances] == [
        [[2000.0, 10_000.0]],
        [[2000.0, None]],
        [[12_000.0, None]],
    ]
    assert result.final["k"]["agents"]["worker-0"]["healthy"] is True
    assert result.metrics["min_serving"] == 1
    assert result.metrics["unhealthy_instances"] == 1
    assert result.metrics["exposure_ms"] == 10_000 - 2000
    events = [(e["type"], e["t_ms"]) for e in result.events if e["t_ms"] >= 10_000]
    assert events == [
        ("deployment_instance_lost", 10_000.0),
        ("deployment_instance_placed", 10_000.0),
        ("deployment_instance_healthy", 12_000.0),
    ]


def test_per_deployment_duration_runs_from_creation_to_the_terminal_status() -> None:
    result = two_workers(0)
    assert result.metrics["per_deployment"] == [
        {"deployment_id": "dep_k_1", "version": "1", "outcome": "successful", "duration_ms": 2000.0}
    ]
    assert result.metrics["min_serving"] == 2
