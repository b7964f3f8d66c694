"""Pictures of a run, drawn from the result alone: who ran what when, and how much capacity served; and of
a sweep: a measure or outcome share over two grid axes, the spread of durations, the outcome mix per point.

Every function takes `ax=None` (a new figure) and returns the Axes; none calls `show`, so they work in
notebooks, scripts and headless tests alike. Times are drawn in seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.colors import Colormap
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mn_deploy_core.manifest import runtime_order
from mn_deploy_core.status import Status
from sim.metrics import TERMINAL_EVENTS, serving_intervals, serving_steps
from sim.result import Result
from sim.sweep import Point, SweepResult
from sim.tuning_plot import candidates_plot

__all__ = [
    "candidates_plot",
    "capacity",
    "duration_cdf",
    "heatmap",
    "measure_label",
    "outcome_shares",
    "run_figure",
    "status_spans",
    "sweep_figure",
    "timeline",
    "unit_of",
]

HATCH = {"primary": "", "canary": "//", "candidate": "xx"}
MARKS = {"placed": ("|", "black"), "healthy": ("o", "tab:green"), "unhealthy": ("X", "tab:red")}
STATUS_COLORS: dict[str, str] = {
    Status.RUNNING: "tab:blue",
    Status.AWAITING_PROMOTION: "tab:orange",
    Status.PAUSED: "tab:gray",
}
KEY_FAMILIES = ("Blues", "Oranges", "Purples", "Greens", "Reds", "YlOrBr")
"""With several keys, each key's manifests take shades of one of these, so no two keys share a colour."""
EVENT_GREYS = ("0.15", "0.45", "0.65")
EVENT_DASHES: tuple[tuple[float, ...], ...] = ((6, 2), (3, 1.5), (8, 2, 2, 2), (8, 2, 2, 2, 2, 2), (12, 3))
"""Deployment events are told apart by shade and dash, in greys only, so they never read as a version."""
_INSTANCE_EVENT = "deployment_instance_"
_ROW_HEIGHT = 0.8
_MAX_TICK_LABELS = 60

Manifest = tuple[str, str | None]
"""(deployment key, manifest name): what one colour stands for."""
Row = tuple[str, str]
"""(deployment key, agent id): one row of the timeline."""


def _axes(ax: Axes | None) -> Axes:
    return plt.subplots(figsize=(11, 6))[1] if ax is None else ax


def _keys(result: Result) -> list[str]:
    return sorted({row["deployment_key"] for row in result.instances})


def _manifest_colors(result: Result) -> dict[Manifest, Any]:
    """One colour per (key, manifest) in order of first appearance, the same in both plots: one key gets
    tab10's distinct hues; several keys get a hue family each, a shade per manifest."""
    manifests = list(dict.fromkeys((row["deployment_key"], row["manifest_name"]) for row in result.instances))
    keys = _keys(result)
    if len(keys) <= 1:
        palette: Colormap = plt.get_cmap("tab10")
        return {manifest: palette(i % palette.N) for i, manifest in enumerate(manifests)}
    colors: dict[Manifest, Any] = {}
    for i, key in enumerate(keys):
        family = plt.get_cmap(KEY_FAMILIES[i % len(KEY_FAMILIES)])
        own = [manifest for manifest in manifests if manifest[0] == key]
        for shade, manifest in zip(np.linspace(0.8, 0.45, len(own)) if len(own) > 1 else [0.7], own, strict=True):
            colors[manifest] = family(shade)
    return colors


def _manifest_label(result: Result, manifest: Manifest) -> str:
    """A manifest's name, after its key when there are several keys."""
    key, name = manifest
    return str(name) if len(_keys(result)) <= 1 else f"{key}: {name}"


def _seconds(t_ms: float) -> float:
    return t_ms / 1000.0


def _right_edge(result: Result) -> float:
    """A little past the end, so what holds at the end (often the state right after it settled) shows."""
    return max(_seconds(result.end_ms) * 1.05, 1.0)


def _rows(result: Result) -> dict[Row, int]:
    """A group of rows per key (keys in name order), an agent a row in runtime-id order within it."""
    rows = sorted(
        {(row["deployment_key"], row["agent_id"]) for row in result.instances},
        key=lambda row: (row[0], runtime_order(row[1])),
    )
    return {row: i for i, row in enumerate(rows)}


def _lane(row: Mapping[str, Any], rows: Mapping[Row, int], role: str | None = None) -> tuple[float, float]:
    """(low, high) of an instance's bar in `role` (default: as placed): primaries fill the row; canaries and
    candidates, which run beside a primary of the same agent, take its lower half so both stay visible."""
    y = rows[row["deployment_key"], row["agent_id"]]
    if (role or row["role"]) == "primary":
        return y - _ROW_HEIGHT / 2, y + _ROW_HEIGHT / 2
    return y, y + _ROW_HEIGHT / 2


def _segments(row: Mapping[str, Any], end: float) -> list[tuple[str, float, float]]:
    """(role, start s, stop s) of an instance's bar: from placement to stop (or the end), split where a canary
    or candidate was promoted to primary, so it is hatched only while it was one."""
    start = _seconds(row["placed_ms"])
    ended = row["completed_ms"] if row["stopped_ms"] is None else row["stopped_ms"]
    stop = end if ended is None else _seconds(ended)
    promoted = row["promoted_ms"]
    if promoted is None:
        return [(row["role"], start, stop)]
    return [(row["role"], start, _seconds(promoted)), ("primary", _seconds(promoted), stop)]


def _bars(ax: Axes, result: Result, rows: Mapping[Row, int], colors: Mapping[Manifest, Any], end: float) -> None:
    """One PolyCollection per (key, manifest, role): a bar per instance and role it held."""
    groups: dict[tuple[Manifest, str], list[list[tuple[float, float]]]] = {}
    for row in result.instances:
        for role, start, stop in _segments(row, end):
            low, high = _lane(row, rows, role)
            groups.setdefault(((row["deployment_key"], row["manifest_name"]), role), []).append(
                [(start, low), (stop, low), (stop, high), (start, high)]
            )
    for (manifest, role), verts in sorted(groups.items(), key=lambda group: group[0][0][0]):  # legend by key
        hatch = HATCH.get(role, "")
        bars = PolyCollection(verts, facecolors=colors[manifest], edgecolors="white", hatch=hatch, alpha=0.85)
        bars.set_label(f"{_manifest_label(result, manifest)} ({role})")
        ax.add_collection(bars)


def _marks(ax: Axes, result: Result, rows: Mapping[Row, int]) -> None:
    for mark, (marker, color) in MARKS.items():
        points = [
            (row[f"{mark}_ms"], sum(_lane(row, rows)) / 2) for row in result.instances if row[f"{mark}_ms"] is not None
        ]
        ax.plot(
            [_seconds(t) for t, _ in points],
            [y for _, y in points],
            linestyle="none",
            marker=marker,
            color=color,
            markersize=5,
            label=mark,
        )


def _key_spans(rows: Mapping[Row, int]) -> dict[str, tuple[float, float]]:
    """(top, bottom) of each key's group of rows, edges included."""
    spans: dict[str, tuple[float, float]] = {}
    for (key, _), y in rows.items():
        top, bottom = spans.get(key, (y - 0.5, y + 0.5))
        spans[key] = (min(top, y - 0.5), max(bottom, y + 0.5))
    return spans


def _deployment_lines(ax: Axes, result: Result, rows: Mapping[Row, int]) -> None:
    """A vertical line at every deployment-level event (operator actions and status changes) across its key's
    rows, a grey shade and dash per kind; a dotted black line at a refused action, across every row."""
    key_of = {d["deployment_id"]: d["deployment_key"] for d in result.deployments}
    spans = _key_spans(rows)
    events = [e for e in result.events if not e["type"].startswith(_INSTANCE_EVENT)]
    kinds = list(dict.fromkeys(e["type"] for e in events))
    for i, kind in enumerate(kinds):
        for n, event in enumerate(e for e in events if e["type"] == kind):
            top, bottom = spans.get(key_of[event["deployment_id"]], (-0.5, len(rows) - 0.5))
            x = _seconds(event["t_ms"])
            ax.plot(
                [x, x],
                [top, bottom],
                color=EVENT_GREYS[i % len(EVENT_GREYS)],
                linestyle=(0, EVENT_DASHES[i % len(EVENT_DASHES)]),
                linewidth=1.2,
                label=kind.removeprefix("deployment_") if n == 0 else None,
            )
    for n, error in enumerate(result.errors):
        ax.axvline(
            _seconds(error["t_ms"]),
            color="black",
            linestyle=":",
            linewidth=1,
            label="refused action" if n == 0 else None,
        )


def _label(ax: Axes, result: Result, traced: str | None, ylabel: str, what: str = "") -> None:
    """Axis labels and title: a simulated run names its seed; a run drawn from a trace (`traced`: its source) has
    none, and a live one is on wall-clock time from the trace's origin."""
    ax.set_xlabel("time since the first input (s)" if traced == "live" else "simulated time (s)")
    ax.set_ylabel(ylabel)
    ax.set_title(result.scenario + ("" if traced else f" (seed {result.seed})") + what)


def _legend(ax: Axes) -> None:
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", handlelength=3)


def timeline(result: Result, ax: Axes | None = None, *, traced: str | None = None) -> Axes:
    """One row per agent, grouped by key (the key in the row labels when there are several, a line between
    groups); a bar per instance coloured by manifest and hatched by role while it held it; marks at placed,
    healthy and unhealthy; grey dashed lines at deployment events across their key's rows, dotted at refused
    actions. `traced`: the source of the trace the result was read from (`sim.traced`), None for a run."""
    ax = _axes(ax)
    rows = _rows(result)
    several = len(_keys(result)) > 1
    edge = _right_edge(result)
    _bars(ax, result, rows, _manifest_colors(result), edge)
    _marks(ax, result, rows)
    _deployment_lines(ax, result, rows)
    if several:
        for _, bottom in list(_key_spans(rows).values())[:-1]:
            ax.axhline(bottom, color="black", linewidth=0.8)
    ax.set_xlim(0, edge)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    if len(rows) <= _MAX_TICK_LABELS:
        ax.set_yticks(range(len(rows)), [f"{key}: {agent}" if several else agent for key, agent in rows])
    _label(ax, result, traced, "key: agent" if several else "agent")
    _legend(ax)
    return ax


def status_spans(deployment: Mapping[str, Any], end_ms: float) -> list[tuple[str, float, float]]:
    """(status, from, to) of one deployment's active statuses, replayed from its events."""
    spans: list[tuple[str, float, float]] = []
    status: str | None = None
    since = 0.0
    before_pause: str | None = None
    for event in deployment["events"]:
        kind, t = event["type"], event["t_ms"]
        new = status
        if kind in ("deployment_created", "deployment_started", "deployment_promoted"):
            new = Status.RUNNING
        elif kind in ("deployment_canary_ready", "deployment_step_ready"):
            new = Status.AWAITING_PROMOTION if event.get("promotion", "manual") == "manual" else status
        elif kind == "deployment_paused":
            before_pause, new = status, Status.PAUSED
        elif kind == "deployment_running":
            new = before_pause or Status.RUNNING
        elif kind == "deployment_instance_unhealthy" and status == Status.AWAITING_PROMOTION:
            new = Status.RUNNING
        elif kind in TERMINAL_EVENTS:
            new = None
        if new != status:
            if status is not None and t > since:
                spans.append((status, since, t))
            status, since = new, t
    if status is not None and end_ms > since:
        spans.append((status, since, end_ms))
    return spans


def _steps_to(steps: Sequence[tuple[float, int]], edge: float) -> tuple[list[float], list[int]]:
    times = [0.0, *(_seconds(t) for t, _ in steps), edge]
    counts = [0, *(c for _, c in steps)]
    return times, [*counts, counts[-1]]


def _bands(ax: Axes, result: Result) -> None:
    labelled: set[str] = set()
    for deployment in result.deployments:
        for status, start, end in status_spans(deployment, result.end_ms):
            ax.axvspan(
                _seconds(start),
                _seconds(end),
                color=STATUS_COLORS[status],
                alpha=0.12,
                label=status if status not in labelled else None,
            )
            labelled.add(status)


def capacity(result: Result, ax: Axes | None = None, *, traced: str | None = None) -> Axes:
    """Serving primaries over time per manifest (and key, with several), in the timeline's colours, over bands
    showing when a deployment was running, awaiting promotion or paused."""
    ax = _axes(ax)
    _bands(ax, result)
    colors = _manifest_colors(result)
    edge = _right_edge(result)
    intervals = serving_intervals(result.instances)
    steps_of = serving_steps(intervals, lambda s: (s.key, s.manifest_name))
    for manifest, steps in sorted(steps_of.items(), key=lambda item: item[0][0]):
        times, counts = _steps_to(steps, edge)
        label = f"{_manifest_label(result, manifest)} serving"
        ax.step(times, counts, where="post", color=colors.get(manifest), linewidth=2, label=label)
    ax.set_xlim(0, edge)
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # a count: no half instances on the axis
    _label(ax, result, traced, "serving primaries", ": capacity")
    _legend(ax)
    return ax


def run_figure(result: Result, *, traced: str | None = None) -> Figure:
    """The timeline above the capacity plot: what `sim run --plot` and `deployment plot` save."""
    figure = Figure(figsize=(13, 10), layout="constrained")
    top, bottom = figure.subplots(2, 1)
    timeline(result, top, traced=traced)
    capacity(result, bottom, traced=traced)
    return figure


OUTCOME_COLORS = {Status.SUCCESSFUL: "tab:green", "reverted": "tab:orange", Status.FAILED: "tab:red", "error": "black"}


def _axis(result: SweepResult, name: str) -> str:
    """The grid axis `name` names, by dotted path or short name."""
    for path, short in result.sweep.short_names.items():
        if name in (path, short):
            return path
    raise ValueError(f"no grid axis {name!r} (axes: {', '.join(result.sweep.grid)})")


def unit_of(metric: str) -> tuple[float, str]:
    """(factor, unit) a measure is drawn in: milliseconds as seconds, counts as they are. The heatmap and the
    duration CDFs share it, so the same figure reads the same on both."""
    return (1 / 1000, "s") if metric.endswith("_ms") else (1.0, "")


def measure_label(metric: str) -> str:
    """A measure's name on an axis, with the unit it is drawn in: `duration (s)`, `min_serving`."""
    unit = unit_of(metric)[1]
    return f"{metric.removesuffix('_ms')} ({unit})" if unit else metric


def _cell(result: SweepResult, point: int, metric: str | None, outcome: str | None) -> tuple[float, float, float]:
    """(value, low, high) of a cell: an outcome's share with its Wilson interval, or a metric's mean with its
    bootstrap interval, in the metric's unit; NaN where there is none."""
    summary = result.summary[point]
    if outcome is not None:
        if outcome not in summary.outcomes:
            raise ValueError(f"no run had the outcome {outcome!r} (outcomes: {', '.join(summary.outcomes)})")
        share = summary.outcomes[outcome]
        return share.share, share.low, share.high
    assert metric is not None
    if metric not in summary.metrics:
        raise ValueError(f"the sweep did not keep {metric!r} (kept: {', '.join(summary.metrics)})")
    estimate, (factor, _) = summary.metrics[metric], unit_of(metric)

    def scaled(value: float | None) -> float:
        return np.nan if value is None else value * factor

    return scaled(estimate.mean), scaled(estimate.low), scaled(estimate.high)


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:#.3g}"


def _cell_text(value: float, low: float, high: float, unit: str) -> str:
    """The value with its unit, and its interval below it when there is one."""
    text = _number(value) + (f" {unit}" if unit else "")
    return text if np.isnan(low) or np.isnan(high) else f"{text}\n[{_number(low)}, {_number(high)}]"


def heatmap(
    result: SweepResult,
    x: str,
    y: str,
    *,
    metric: str | None = None,
    outcome: str | None = None,
    where: Mapping[str, Any] | None = None,
    ax: Axes | None = None,
) -> Axes:
    """The mean of `metric` (milliseconds drawn as seconds), or the share of runs with `outcome`, at each (x, y)
    of two grid axes, written in its cell with its 95% interval below, and a colour bar attached to the axes
    naming the unit. With more axes, `where` fixes the others ({axis: value}), so each cell is one point."""
    if (metric is None) == (outcome is None):
        raise ValueError("give exactly one of metric= or outcome=")
    ax = _axes(ax)
    sweep = result.sweep
    x_path, y_path = _axis(result, x), _axis(result, y)
    fixed = {_axis(result, name): value for name, value in (where or {}).items()}
    xs, ys = sweep.grid[x_path], sweep.grid[y_path]
    cells = np.full((len(ys), len(xs), 3), np.nan)
    filled = np.zeros((len(ys), len(xs)), dtype=bool)
    for point in sweep.points:
        if any(point.params[path] != value for path, value in fixed.items()):
            continue
        row, column = ys.index(point.params[y_path]), xs.index(point.params[x_path])
        if filled[row, column]:
            raise ValueError("several points fall in one cell: fix the other grid axes with where=")
        filled[row, column] = True
        cells[row, column] = _cell(result, point.index, metric, outcome)
    unit = "" if metric is None else unit_of(metric)[1]
    image = ax.imshow(cells[:, :, 0], origin="lower", aspect="auto", cmap="viridis")
    for (row, column), value in np.ndenumerate(cells[:, :, 0]):
        if not np.isnan(value):
            color = "black" if image.norm(value) > 0.6 else "white"  # the bright end of viridis is yellow
            text = _cell_text(value, *cells[row, column, 1:], unit)
            ax.text(column, row, text, ha="center", va="center", color=color, fontsize="small")
    ax.set_xticks(range(len(xs)), [str(v) for v in xs])
    ax.set_yticks(range(len(ys)), [str(v) for v in ys])
    ax.set_xlabel(sweep.short_names[x_path])
    ax.set_ylabel(sweep.short_names[y_path])
    what = f"share of {outcome}" if outcome is not None else f"mean {metric}"
    ax.set_title(f"{sweep.name}: {what} (95% interval below)")
    label = f"share of runs {outcome}" if metric is None else f"mean {measure_label(metric)}"
    bar = ax.inset_axes((1.02, 0.0, 0.03, 1.0))  # a child of the axes: it stays beside them whatever the layout
    ax.figure.colorbar(image, cax=bar, label=label)
    return ax


def _durations(result: SweepResult, point: Point) -> list[float]:
    factor, _ = unit_of("duration_ms")
    return sorted(
        row["duration_ms"] * factor
        for row in result.rows
        if row["point"] == point.index and row["duration_ms"] is not None
    )


def duration_cdf(result: SweepResult, ax: Axes | None = None) -> Axes:
    """Per point, the share of its runs whose rollout ended within t. Runs without a duration (still
    active at the end, or raised) count in the denominator, so a curve that stays below 1 shows them."""
    if "duration_ms" not in result.sweep.metrics:
        raise ValueError("the sweep did not keep duration_ms")
    ax = _axes(ax)
    for point in result.sweep.points:
        runs = result.summary[point.index].runs
        durations = _durations(result, point)
        shares = [(i + 1) / runs for i in range(len(durations))]
        ax.step([0.0, *durations], [0.0, *shares], where="post", label=result.sweep.label(point))
    ax.set_xlim(left=0)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(f"rollout {measure_label('duration_ms')}")
    ax.set_ylabel("share of runs")
    ax.set_title(f"{result.sweep.name}: duration of the rollout under test")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    return ax


def outcome_shares(result: SweepResult, ax: Axes | None = None) -> Axes:
    """A stacked bar per point: the share of its runs ending in each outcome."""
    ax = _axes(ax)
    summary = result.summary
    labels = [result.sweep.label(point) for point in result.sweep.points]
    palette = plt.get_cmap("tab10")
    left = np.zeros(len(summary))
    outcomes = list(summary[0].outcomes) if summary else []
    for i, outcome in enumerate(outcomes):
        shares = np.array([s.outcomes[outcome].share for s in summary])
        color = OUTCOME_COLORS.get(outcome, palette((i + 4) % palette.N))
        ax.barh(range(len(summary)), shares, left=left, color=color, label=outcome)
        left += shares
    ax.set_yticks(range(len(summary)), labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of runs")
    ax.set_title(f"{result.sweep.name}: outcomes ({result.sweep.runs} runs per point)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    return ax


def sweep_figure(result: SweepResult, *, metric: str | None = None) -> Figure:
    """What `sim sweep --plot` saves: outcome shares; duration CDFs when kept; for a two-axis grid, a heatmap of
    `metric` (default: the first numeric metric the sweep file lists)."""
    sweep = result.sweep
    panels: list[Callable[[Axes], object]] = [lambda ax: outcome_shares(result, ax)]
    if "duration_ms" in sweep.metrics:
        panels.append(lambda ax: duration_cdf(result, ax))
    if len(sweep.grid) == 2 and sweep.metrics:
        x, y = sweep.grid
        panels.append(lambda ax: heatmap(result, x, y, metric=metric or sweep.metrics[0], ax=ax))
    figure = Figure(figsize=(12, 4.5 * len(panels)), layout="constrained")
    for draw, ax in zip(panels, figure.subplots(len(panels), 1, squeeze=False)[:, 0], strict=True):
        draw(ax)
    return figure
