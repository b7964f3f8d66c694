"""Plots of the handmade result, checked through their artists (headless, no pixels compared)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_hex, to_rgb

from sim import Result, read_scenario, run_scenario
from sim.plots import capacity, run_figure, status_spans, timeline
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


TWO_KEYS = Path(__file__).resolve().parent / "scenarios" / "two-keys.json"


@pytest.fixture(scope="module")
def two_keys() -> Result:
    """api (3 agents, an auto-promoted canary of api-v2) and search (2 agents, search-v2 fails and reverts)."""
    return run_scenario(read_scenario(TWO_KEYS))


def _bars(ax: Axes) -> dict[str, PolyCollection]:
    return {c.get_label(): c for c in ax.collections if isinstance(c, PolyCollection)}


def test_a_promoted_canary_is_hatched_only_until_its_promotion(handmade: Result) -> None:
    segments = []
    for label, bars in _bars(timeline(handmade)).items():
        for path in bars.get_paths():
            xs, ys = path.vertices[:, 0], path.vertices[:, 1]
            if ys.max() <= 0.5:  # agent a's row
                segments.append((label, bars.get_hatch() or "", xs.min(), xs.max()))
    assert sorted(segments, key=lambda s: s[2]) == [
        ("v1 (primary)", "", 0.0, 120.0),
        ("v2 (canary)", "//", 100.0, 120.0),  # beside a1, hatched while a canary
        ("v2 (primary)", "", 120.0, 210.0),  # the same instance from its promotion on: plain, the full row
    ]


def test_several_keys_get_a_row_group_each_with_the_key_in_the_labels(two_keys: Result) -> None:
    ax = timeline(two_keys)
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "api: worker-0",
        "api: worker-1",
        "api: worker-2",
        "search: worker-0",
        "search: worker-1",
    ]
    assert ax.get_ylabel() == "key: agent"
    assert [line.get_ydata()[0] for line in ax.lines if line.get_linestyle() == "-"] == [2.5]  # between the groups
    bars = _bars(ax)
    search = bars["search: search-v2 (primary)"].get_paths()
    assert {p.vertices[:, 1].min() for p in search} == {3 - 0.4}  # search's worker-0, not api's


def test_several_keys_get_a_palette_each_and_no_colour_is_shared(two_keys: Result) -> None:
    ax = timeline(two_keys)
    colours = {label: to_hex(c.get_facecolor()[0], keep_alpha=False) for label, c in _bars(ax).items()}
    by_manifest = {label.rsplit(" (", 1)[0]: colour for label, colour in colours.items()}
    assert len(set(by_manifest.values())) == len(by_manifest) == 4  # api-v1, api-v2, search-v1, search-v2
    assert colours["api: api-v2 (canary)"] == colours["api: api-v2 (primary)"]
    blue, orange = plt.get_cmap("Blues"), plt.get_cmap("Oranges")
    assert {by_manifest["api: api-v1"], by_manifest["api: api-v2"]} == {to_hex(blue(0.8)), to_hex(blue(0.45))}
    assert {by_manifest["search: search-v1"], by_manifest["search: search-v2"]} == {
        to_hex(orange(0.8)),
        to_hex(orange(0.45)),
    }
    serving = {line.get_label(): to_hex(line.get_color()) for line in capacity(two_keys).lines}
    assert serving == {
        "api: api-v1 serving": by_manifest["api: api-v1"],
        "api: api-v2 serving": by_manifest["api: api-v2"],
        "search: search-v1 serving": by_manifest["search: search-v1"],
    }


def test_event_lines_are_grey_span_their_key_and_have_a_legend_entry_per_kind(two_keys: Result) -> None:
    ax = timeline(two_keys)
    events = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert events
    for line in events:
        red, green, blue = to_rgb(line.get_color())
        assert red == green == blue  # a grey: never one of the versions' colours
    reverted = next(line for line in events if line.get_label() == "reverted")
    assert list(reverted.get_ydata()) == [2.5, 4.5]  # search's rows only
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    kinds = {e["type"].removeprefix("deployment_") for e in two_keys.events if "instance" not in e["type"]}
    assert kinds <= set(legend)
    # Line2D keeps its dash sequence only privately; it is what tells two kinds of the same grey apart
    styles = {line.get_label(): (line.get_color(), line._unscaled_dash_pattern) for line in events}
    named = {label: style for label, style in styles.items() if not label.startswith("_")}
    assert len(set(named.values())) == len(named)  # each kind drawn its own way


def test_the_two_keys_figure_renders(two_keys: Result, tmp_path: Path) -> None:
    path = tmp_path / "two-keys.png"
    run_figure(two_keys).savefig(path, dpi=50)
    assert path.read_bytes().startswith(b"\x89PNG")
