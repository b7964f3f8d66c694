"""Pictures of a run, drawn from the result alone: who ran what when, and how much capacity served; and of
a sweep: a measure or outcome share over two grid axes, the spread of durations, the outcome mix per point.

Every function takes `ax=None` (a new figure) and returns the Axes; none calls `show`, so they work in
notebooks, scripts and headless tests alike. Times are drawn in seconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.colors import Colormap
from matplotlib.figure import Figure

from mn_deploy_core.manifest import runtime_order
from mn_deploy_core.status import Status
from sim.metrics import TERMINAL_EVENTS, serving_intervals, serving_steps
from sim.result import Result
from sim.sweep import Point, SweepResult

HATCH = {"primary": "", "canary": "//", "candidate": "xx"}
MARKS = {"placed": ("|", "black"), "healthy": ("o", "tab:green"), "unhealthy": ("X", "tab:red")}
STATUS_COLORS: dict[str, str] = {
    Status.RUNNING: "tab:blue",
    Status.AWAITING_PROMOTION: "tab:orange",
    Status.PAUSED: "tab:gray",
}
_INSTANCE_EVENT = "deployment_instance_"
_ROW_HEIGHT = 0.8
_MAX_TICK_LABELS = 60


def _axes(ax: Axes | None) -> Axes:
    return plt.subplots(figsize=(11, 6))[1] if ax is None else ax


def _manifest_colors(result: Result) -> dict[str | None, Any]:
    """One colour per manifest name, in order of first appearance, stable across both plots."""
    palette: Colormap = plt.get_cmap("tab10")
    names = dict.fromkeys(row["manifest_name"] for row in result.instances)
    return {name: palette(i % palette.N) for i, name in enumerate(names)}


def _seconds(t_ms: float) -> float:
    return t_ms / 1000.0


def _right_edge(result: Result) -> float:
    """A little past the end, so what holds at the end (often the state right after it settled) shows."""
    return max(_seconds(result.end_ms) * 1.05, 1.0)


def _lane(row: Mapping[str, Any], rows: Mapping[str, int], role: str | None = None) -> tuple[float, float]:
    """(low, high) of an instance's bar in `role` (default: as placed): primaries fill the row; canaries and
    candidates, which run beside a primary of the same agent, take its lower half so both stay visible."""
    y = rows[row["agent_id"]]
    if (role or row["role"]) == "primary":
        return y - _ROW_HEIGHT / 2, y + _ROW_HEIGHT / 2
    return y, y + _ROW_HEIGHT / 2


def _segments(row: Mapping[str, Any], end: float) -> list[tuple[str, float, float]]:
    """(role, start s, stop s) of an instance's bar: from placement to stop (or the end), split where a canary
    or candidate was promoted to primary."""
    start = _seconds(row["placed_ms"])
    ended = row["completed_ms"] if row["stopped_ms"] is None else row["stopped_ms"]
    stop = end if ended is None else _seconds(ended)
    promoted = row["promoted_ms"]
    if promoted is None:
        return [(row["role"], start, stop)]
    return [(row["role"], start, _seconds(promoted)), ("primary", _seconds(promoted), stop)]


def _bars(ax: Axes, result: Result, rows: Mapping[str, int], colors: Mapping[str | None, Any], end: float) -> None:
    """One PolyCollection per (manifest, role): a bar per instance and role it held."""
    groups: dict[tuple[str | None, str], list[list[tuple[float, float]]]] = {}
    for row in result.instances:
        for role, start, stop in _segments(row, end):
            low, high = _lane(row, rows, role)
            groups.setdefault((row["manifest_name"], role), []).append(
                [(start, low), (stop, low), (stop, high), (start, high)]
            )
    for (name, role), verts in groups.items():
        bars = PolyCollection(verts, facecolors=colors[name], edgecolors="white", hatch=HATCH.get(role, ""), alpha=0.85)
        bars.set_label(f"{name} ({role})")
        ax.add_collection(bars)


def _marks(ax: Axes, result: Result, rows: Mapping[str, int]) -> None:
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


def _deployment_lines(ax: Axes, result: Result) -> None:
    """A vertical line at every deployment-level event (operator actions and status changes)."""
    events = [e for e in result.events if not e["type"].startswith(_INSTANCE_EVENT)]
    kinds = list(dict.fromkeys(e["type"] for e in events))
    palette = plt.get_cmap("Dark2")
    for i, kind in enumerate(kinds):
        for n, event in enumerate(e for e in events if e["type"] == kind):
            ax.axvline(
                _seconds(event["t_ms"]),
                color=palette(i % palette.N),
                linestyle="--",
                linewidth=1,
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


def timeline(result: Result, ax: Axes | None = None, *, traced: str | None = None) -> Axes:
    """One row per agent; a bar per instance coloured by manifest and hatched by role; marks at placed,
    healthy and unhealthy; dashed lines at deployment events, dotted at refused actions. `traced`: the source
    of the trace the result was read from (`sim.traced`), None for a run."""
    ax = _axes(ax)
    agents = sorted({row["agent_id"] for row in result.instances}, key=runtime_order)
    rows = {agent: i for i, agent in enumerate(agents)}
    edge = _right_edge(result)
    _bars(ax, result, rows, _manifest_colors(result), edge)
    _marks(ax, result, rows)
    _deployment_lines(ax, result)
    ax.set_xlim(0, edge)
    ax.set_ylim(len(agents) - 0.5, -0.5)
    if len(agents) <= _MAX_TICK_LABELS:
        ax.set_yticks(range(len(agents)), agents)
    _label(ax, result, traced, "agent")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
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
    """Serving primaries over time per manifest, over bands showing when a deployment was running,
    awaiting promotion or paused."""
    ax = _axes(ax)
    _bands(ax, result)
    colors = _manifest_colors(result)
    edge = _right_edge(result)
    intervals = serving_intervals(result.instances)
    for name, steps in serving_steps(intervals, lambda s: s.manifest_name).items():
        times, counts = _steps_to(steps, edge)
        ax.step(times, counts, where="post", color=colors.get(name), linewidth=2, label=f"{name} serving")
    ax.set_xlim(0, edge)
    ax.set_ylim(bottom=0)
    _label(ax, result, traced, "serving primaries", ": capacity")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
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


def _cell_value(result: SweepResult, point: int, metric: str | None, outcome: str | None) -> float:
    summary = result.summary[point]
    if outcome is not None:
        if outcome not in summary.outcomes:
            raise ValueError(f"no run had the outcome {outcome!r} (outcomes: {', '.join(summary.outcomes)})")
        return summary.outcomes[outcome].share
    assert metric is not None
    if metric not in summary.metrics:
        raise ValueError(f"the sweep did not keep {metric!r} (kept: {', '.join(summary.metrics)})")
    mean = summary.metrics[metric].mean
    return np.nan if mean is None else mean


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
    """The mean of `metric`, or the share of runs with `outcome`, at each (x, y) of two grid axes, written
    in its cell. With more axes, `where` fixes the others ({axis: value}), so each cell is one point."""
    if (metric is None) == (outcome is None):
        raise ValueError("give exactly one of metric= or outcome=")
    ax = _axes(ax)
    sweep = result.sweep
    x_path, y_path = _axis(result, x), _axis(result, y)
    fixed = {_axis(result, name): value for name, value in (where or {}).items()}
    xs, ys = sweep.grid[x_path], sweep.grid[y_path]
    values = np.full((len(ys), len(xs)), np.nan)
    filled = np.zeros_like(values, dtype=bool)
    for point in sweep.points:
        if any(point.params[path] != value for path, value in fixed.items()):
            continue
        row, column = ys.index(point.params[y_path]), xs.index(point.params[x_path])
        if filled[row, column]:
            raise ValueError("several points fall in one cell: fix the other grid axes with where=")
        filled[row, column] = True
        values[row, column] = _cell_value(result, point.index, metric, outcome)
    image = ax.imshow(values, origin="lower", aspect="auto", cmap="viridis")
    for (row, column), value in np.ndenumerate(values):
        if not np.isnan(value):
            text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
            color = "black" if image.norm(value) > 0.6 else "white"  # the bright end of viridis is yellow
            ax.text(column, row, text, ha="center", va="center", color=color)
    ax.set_xticks(range(len(xs)), [str(v) for v in xs])
    ax.set_yticks(range(len(ys)), [str(v) for v in ys])
    ax.set_xlabel(sweep.short_names[x_path])
    ax.set_ylabel(sweep.short_names[y_path])
    what = f"share of {outcome}" if outcome is not None else f"mean {metric}"
    ax.set_title(f"{sweep.name}: {what}")
    ax.figure.colorbar(image, ax=ax, label=what)
    return ax


def _durations(result: SweepResult, point: Point) -> list[float]:
    return sorted(
        _seconds(row["duration_ms"])
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
    ax.set_xlabel("rollout duration (s)")
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
