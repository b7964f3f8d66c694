"""Plots of the handmade result, checked through their artists (headless, no pixels compared)."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import pytest
from matplotlib.collections import PolyCollection

from sim import Result, read_scenario, run_scenario
from sim.plots import capacity, status_spans, timeline
from tests.sim.conftest import EXAMPLES


@pytest.fixture(autouse=True)
def _close_figures() -> None:
    yield
    plt.close("all")


def test_timeline_draws_a_bar_per_instance_and_role_it_held_grouped_by_manifest_and_role(handmade: Result) -> None:
    ax = timeline(handmade)
    bars = {c.get_label(): c for c in ax.collections if isinstance(c, PolyCollection)}
    assert {label: len(c.get_paths()) for label, c in bars.items()} == {
        "v1 (primary)": 2,
        "v2 (canary)": 1,
        "v2 (primary)": 2,  # b2, and a2 from its promotion at 120 s on
    }
    canary = bars["v2 (canary)"].get_paths()[0].vertices[:, 0]
    assert (canary.min(), canary.max()) == (100.0, 120.0)
    assert bars["v2 (canary)"].get_hatch() == "//" and not bars["v1 (primary)"].get_hatch()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]


def test_timeline_marks_verdicts_and_draws_lines_at_deployment_events(handmade: Result) -> None:
    ax = timeline(handmade)
    marks = {line.get_label(): len(line.get_xdata()) for line in ax.lines if line.get_linestyle() == "None"}
    assert marks == {"placed": 4, "healthy": 4, "unhealthy": 1}
    dashed = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert sorted(line.get_xdata()[0] for line in dashed) == [0.0, 10.0, 100.0, 110.0, 120.0, 140.0]
    assert [line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == ":"] == [105.0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"v1 (primary)", "v2 (canary)", "healthy", "promoted", "refused action"} <= set(legend)


def test_capacity_steps_serving_primaries_per_manifest_over_status_bands(handmade: Result) -> None:
    _, ax = plt.subplots()
    assert capacity(handmade, ax=ax) is ax
    steps = {line.get_label(): list(line.get_ydata()) for line in ax.lines}
    assert steps == {"v1 serving": [0, 2, 0, 0], "v2 serving": [0, 1, 2, 1, 1]}
    assert [(p.get_x(), p.get_width()) for p in ax.patches] == [
        (0.0, 10.0),
        (100.0, 10.0),
        (110.0, 10.0),
        (120.0, 20.0),
    ]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "running",
        "awaiting_promotion",
        "v1 serving",
        "v2 serving",
    ]


def test_status_spans_restore_the_status_a_pause_interrupted() -> None:
    events = [
        {"type": "deployment_started", "t_ms": 0.0},
        {"type": "deployment_canary_ready", "t_ms": 10.0},
        {"type": "deployment_paused", "t_ms": 20.0},
        {"type": "deployment_running", "t_ms": 30.0},
        {"type": "deployment_promoted", "t_ms": 40.0},
        {"type": "deployment_successful", "t_ms": 50.0},
    ]
    assert status_spans({"events": events}, end_ms=90.0) == [
        ("running", 0.0, 10.0),
        ("awaiting_promotion", 10.0, 20.0),
        ("paused", 20.0, 30.0),
        ("awaiting_promotion", 30.0, 40.0),
        ("running", 40.0, 50.0),
    ]


def test_a_saved_result_plots_like_the_live_one() -> None:
    live = run_scenario(read_scenario(EXAMPLES / "blue-green-topology-change.json"))
    saved = Result.from_json(json.loads(live.dumps()))
    assert saved == live
    ax = timeline(saved)
    bars = sum(len(c.get_paths()) for c in ax.collections if isinstance(c, PolyCollection))
    assert bars == len(live.instances) + sum(1 for i in live.instances if i["promoted_ms"] is not None)
    steps = {line.get_label(): line.get_ydata()[-1] for line in capacity(saved).lines}
    assert steps == {"v1 serving": 0, "v2 serving": 11}
