"""Monte Carlo policy sweeps (docs/scenarios.md "Sweep"): a scenario run `runs` times at every point of a grid.

    sweep = read_sweep("examples/sweeps/max-parallel-x-start-failure.json")
    result = run_sweep(sweep, workers=2, out=Path("runs.csv"))
    result.summary            # per point: mean and 95% bootstrap interval of each measure, share of each outcome

Run i of every point has the same seed, drawn from one `SeedSequence` (child i of the sweep's seed), so
points differ only by their parameters (common random numbers), and adding a grid value or more runs leaves
the draws of existing runs as they were. A seed is a plain integer, so any run replays alone with
`mn-deploy sim run SCENARIO --set PATH=VALUE ... --seed N` (`Sweep.replay`). Runs go to any
`concurrent.futures.Executor`; a row depends only on its point and seed, never on which worker ran it or
how many there were.
"""

from __future__ import annotations

import json
import math
import os
import signal
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import ExitStack, closing
from dataclasses import asdict, dataclass, replace
from functools import cached_property, lru_cache
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np

from sim.fanout import InOrder, completions
from sim.interrupts import DeferredInterrupt
from sim.jsonfile import read_json
from sim.measures import MEASURES, OUTCOME, measure
from sim.overrides import PathError, format_assignment, with_overrides
from sim.reproduce import reproduce_command
from sim.rows import ERROR, REPLAY, Row, RowWriter, header
from sim.scenario import Scenario, load_scenario, read_scenario_document, run_scenario
from sim.schema import (
    SCHEMA_KEY,
    Problem,
    Problems,
    ScenarioError,
    child,
    known_keys,
    list_of,
    natural,
    object_of,
    text,
)
from sim.stats import interval_methods
from sim.summary import PointSummary, summarize

PLAIN: Mapping[str, Callable[[Any, str], Any]] = {"description": text, "seed": natural}
"""The sweep's plain fields and their checkers (whose `KINDS` the published schema gives)."""
KEYS = (SCHEMA_KEY, "scenario", *PLAIN, "runs", "grid", "metrics")
"""Every key a sweep file may hold (`$schema` only points an editor at the published schema)."""
REQUIRED = ("scenario", "runs")
SCENARIO = "$.scenario"
MAX_RUNS = 100_000
MAX_POINTS = 10_000
"""Far beyond any sweep worth waiting for; above them a few bytes of JSON would only exhaust memory."""
_SEED_MASK = 2**63 - 1


def run_seeds(entropy: int, runs: int) -> tuple[int, ...]:
    """Seed of run i: 63 bits of child i of `SeedSequence(entropy)`, whatever the number of runs; 63 bits so
    it stays an ordinary signed 64-bit integer in CSV readers and data frames."""
    children = np.random.SeedSequence(entropy).spawn(runs)
    return tuple(int(c.generate_state(1, np.uint64)[0]) & _SEED_MASK for c in children)


@dataclass(frozen=True, slots=True)
class Point:
    """One combination of grid values, by dotted path; `index` counts points in grid order (last axis fastest)."""

    index: int
    params: Mapping[str, Any]


@dataclass(frozen=True)
class Sweep:
    """A validated sweep file. `scenario` is the scenario document as written; `metrics` the numeric measures
    kept (the outcome is always kept)."""

    name: str
    description: str | None
    scenario_file: str
    scenario: Any
    runs: int
    seed: int
    grid: Mapping[str, tuple[Any, ...]]
    metrics: tuple[str, ...]
    points: tuple[Point, ...]
    warnings: tuple[str, ...] = ()
    """The scenario's warnings at every point, each once (see `Scenario.warnings`)."""

    @cached_property
    def seeds(self) -> tuple[int, ...]:
        return run_seeds(self.seed, self.runs)

    @cached_property
    def columns(self) -> list[str]:
        """The CSV header of its rows."""
        return header(list(self.grid), self.metrics)

    def document(self, point: Point) -> Any:
        """The scenario document of `point`."""
        return with_overrides(self.scenario, point.params)

    def replay(self, point: int, run: int) -> str:
        """The command that reruns run `run` of point `point` alone."""
        return reproduce_command(self.scenario_file, self.seeds[run], self.points[point].params)

    @cached_property
    def short_names(self) -> dict[str, str]:
        """Each axis by the shortest tail of its path that no other axis ends with (`max_parallel`)."""
        parts = {path: path.split(".") for path in self.grid}
        names = {}
        for path, mine in parts.items():
            size = 1
            while any(other[-size:] == mine[-size:] for p, other in parts.items() if p != path) and size < len(mine):
                size += 1
            names[path] = ".".join(mine[-size:])
        return names

    def label(self, point: Point) -> str:
        """`max_parallel=2, start_failure=0.1`; the baseline when the grid is empty."""
        parts = [format_assignment(self.short_names[path], value) for path, value in point.params.items()]
        return ", ".join(parts) or "baseline"


def _axis(values: Any, path: str, axis: str, scenario: Any) -> tuple[Any, ...]:
    """One grid axis: a non-empty list of values for a dotted path the scenario has (or may have)."""
    listed = list_of(values, path)
    if not listed:
        raise ScenarioError(path, "must list at least one value")
    try:
        with_overrides(scenario, {axis: listed[0]})
    except PathError as error:
        raise ScenarioError(path, error.problem) from None
    return tuple(listed)


def _grid(value: Any, path: str, scenario: Any) -> dict[str, tuple[Any, ...]]:
    problems = Problems()
    grid = {axis: problems.check(_axis, values, child(path, axis), axis, scenario) for axis, values in value.items()}
    problems.raise_any()
    return {axis: values for axis, values in grid.items() if values is not None}


def _metric(name: Any, path: str) -> str:
    if name not in MEASURES:
        raise ScenarioError(path, f"unknown metric {json.dumps(name)} (expected one of {', '.join(MEASURES)})")
    return str(name)


def _metrics(value: Any, path: str) -> tuple[str, ...]:
    problems = Problems()
    names = [problems.check(_metric, name, child(path, i)) for i, name in enumerate(list_of(value, path))]
    problems.raise_any()
    return tuple(n for n in dict.fromkeys(names) if n is not None and n != OUTCOME)


def _runs(value: Any, path: str) -> int:
    runs = natural(value, path)
    if not 1 <= runs <= MAX_RUNS:
        raise ScenarioError(path, f"must be between 1 and {MAX_RUNS}")
    return runs


def _scenario(value: Any, path: str, base: Path) -> tuple[str, Any]:
    """The scenario file's path (relative to `base`) and its document, its manifest files read in."""
    scenario_file = os.path.normpath(base / text(value, path))
    try:
        return scenario_file, read_scenario_document(scenario_file)
    except ScenarioError as error:
        raise error.inside(path, scenario_file) from None


def _point_problems(sweep: Sweep) -> tuple[tuple[str, ...], list[Problem]]:
    """The scenario's warnings at every point, each once, and its problems, each once: at the first point that has
    it, with how many other points have it too (a file broken everywhere is one problem, not one per point)."""
    warnings: dict[str, None] = {}
    first: dict[str, str] = {}
    points: dict[str, int] = {}
    for point in sweep.points:
        try:
            warnings.update(dict.fromkeys(load_scenario(sweep.document(point)).warnings))
        except ScenarioError as error:
            at = f" at {sweep.label(point)}" if point.params else ""
            for problem in map(str, error.problems):
                first.setdefault(problem, f"{sweep.scenario_file}{at}: {problem}")
                points[problem] = points.get(problem, 0) + 1
    return tuple(warnings), [Problem(SCENARIO, first[p] + _elsewhere(points[p] - 1)) for p in first]


def _elsewhere(others: int) -> str:
    return f" (and at {others} other point{'s' if others > 1 else ''})" if others else ""


def load_sweep(document: Any, *, name: str, base: Path = Path()) -> Sweep:
    """Validate a parsed sweep whose scenario path is relative to `base`; every point's scenario is checked
    too, so a bad grid value fails here rather than in a worker. Raises ScenarioError with every problem found,
    each naming its path."""
    body = object_of(document, "$")
    problems = Problems()
    problems.check(known_keys, body, "$", KEYS, REQUIRED)
    scenario_file, scenario = problems.field(body, "$", "scenario", lambda v, p: _scenario(v, p, base), ("", None))
    grid_path = child("$", "grid")
    grid = problems.check(object_of, body.get("grid", {}), grid_path) or {}
    if scenario is not None:  # the axes are checked against the scenario; without one they are not counted
        grid = problems.check(_grid, grid, grid_path, scenario) or {}
        if math.prod(len(values) for values in grid.values()) > MAX_POINTS:
            problems.add(grid_path, f"must have at most {MAX_POINTS} points (the product of its axes' lengths)")
    plain = {key: problems.field(body, "$", key, check, None) for key, check in PLAIN.items()}
    sweep = Sweep(
        name=name,
        description=plain["description"],
        scenario_file=scenario_file,
        scenario=scenario,
        runs=problems.field(body, "$", "runs", _runs, 1),
        seed=plain["seed"] or 0,
        grid=grid,
        metrics=problems.field(body, "$", "metrics", _metrics, tuple(m for m in MEASURES if m != OUTCOME)),
        points=(),
    )
    problems.raise_any()
    points = tuple(Point(i, dict(zip(grid, values, strict=True))) for i, values in enumerate(product(*grid.values())))
    sweep = replace(sweep, points=points)
    warnings, problems.found = _point_problems(sweep)
    problems.raise_any()
    return replace(sweep, warnings=warnings)


def read_sweep(path: str | Path) -> Sweep:
    """Load a sweep file; its scenario path is relative to the file, and its name is the file's stem."""
    path = Path(path)
    return load_sweep(read_json(path), name=path.stem, base=path.parent)


@lru_cache(maxsize=16)
def cached_scenario(document: str) -> Scenario:
    """A worker loads each point's scenario once, not once per run (a verification's too)."""
    return load_scenario(json.loads(document))


def run_one(document: str, seed: int) -> dict[str, Any]:
    """The measures of one run (in a worker); a run that raises gives the `error` outcome and its message,
    so one bad seed does not stop the sweep."""
    try:
        return measure(run_scenario(cached_scenario(document), seed=seed))
    except Exception as error:
        message = " ".join(f"{type(error).__name__}: {error}".split())
        return {OUTCOME: ERROR, ERROR: message}


def ignore_interrupts() -> None:
    """Pool workers leave Ctrl-C to the parent, which keeps the rows done and stops the sweep cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def default_workers() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep; `rows` are the runs finished before it (already written to `out`)."""

    def __init__(self, rows: list[Row]) -> None:
        super().__init__(f"sweep interrupted after {len(rows)} runs")
        self.rows = rows


@dataclass(frozen=True)
class SweepResult:
    sweep: Sweep
    rows: list[Row]
    """One per run, in (point, run) order."""

    @cached_property
    def summary(self) -> list[PointSummary]:
        return summarize([p.params for p in self.sweep.points], self.rows, self.sweep.metrics)

    def summary_json(self) -> dict[str, Any]:
        sweep = self.sweep
        return {
            "sweep": sweep.name,
            "scenario": sweep.scenario_file,
            "runs": sweep.runs,
            "seed": sweep.seed,
            "grid": {path: list(values) for path, values in sweep.grid.items()},
            "metrics": list(sweep.metrics),
            "intervals": interval_methods(),
            "points": [asdict(point) for point in self.summary],
        }

    def to_dataframe(self) -> Any:
        """The rows as a pandas DataFrame (pandas is not a dependency: install it to use this)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("to_dataframe needs pandas: pip install pandas") from None

        return pd.DataFrame(self.rows, columns=self.sweep.columns)


def _row(sweep: Sweep, index: int, measured: Mapping[str, Any]) -> Row:
    point, run = divmod(index, sweep.runs)
    failed = measured[OUTCOME] == ERROR
    return {
        "point": point,
        "run": run,
        "seed": sweep.seeds[run],
        **sweep.points[point].params,
        OUTCOME: measured[OUTCOME],
        **{name: measured.get(name) for name in sweep.metrics},
        ERROR: measured.get(ERROR),
        REPLAY: sweep.replay(point, run) if failed else None,
    }


def run_sweep(
    sweep: Sweep,
    *,
    executor: Executor | None = None,
    workers: int | None = None,
    out: Path | None = None,
    progress: Callable[[Row], None] | None = None,
) -> SweepResult:
    """Run every point `sweep.runs` times. Without an `executor` a process pool of `workers` (default: the
    core count) runs them; with one, `workers` says how many runs it executes at once (2 x that many are kept
    submitted). Rows go to the CSV `out` in (point, run) order as soon as they can; `progress` is called with
    each finished row. Ctrl-C (taken after the next run finishes) raises SweepInterrupted once every finished
    row is written."""
    workers = workers or default_workers()
    texts = [json.dumps(sweep.document(point)) for point in sweep.points]
    calls = ((texts[point.index], seed) for point in sweep.points for seed in sweep.seeds)
    finished: dict[int, Row] = {}
    with ExitStack() as stack:
        interrupt = stack.enter_context(DeferredInterrupt())
        if executor is None:
            executor = stack.enter_context(ProcessPoolExecutor(workers, initializer=ignore_interrupts))
        writer = stack.enter_context(RowWriter(out, sweep.columns)) if out else None
        ordered: InOrder[Row] = InOrder(writer.write if writer else lambda row: None)
        runs = stack.enter_context(closing(completions(executor, run_one, calls, 2 * workers)))
        try:
            for index, measured in runs:
                finished[index] = row = _row(sweep, index, measured)
                ordered.add(index, row)
                if progress is not None:
                    progress(row)
                interrupt.check()
        except KeyboardInterrupt:
            ordered.drain()
            raise SweepInterrupted([finished[i] for i in sorted(finished)]) from None
    return SweepResult(sweep, [finished[i] for i in range(len(finished))])
