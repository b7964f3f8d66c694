"""Metrics from a result built by hand, where every figure can be worked out on paper."""

from __future__ import annotations

from sim import Result
from sim.metrics import Serving, compute_metrics, serving_intervals


def test_serving_starts_at_the_healthy_verdict_and_for_a_canary_not_before_promotion(handmade: Result) -> None:
    intervals = {s.instance_id: s for s in serving_intervals(handmade.deployments, handmade.instances, handmade.events)}
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
