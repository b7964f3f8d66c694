"""`mn-deploy sim`: run a scenario file on simulated time, or sweep it over a grid of settings, and show,
save or pipe what happened.

Bad input is one line naming the JSONPath of the problem and exit code 2; a run that breaks prints its
seed and the one command that replays it, with exit code 1 (in a sweep it becomes an error row and the
sweep goes on). Ctrl-C stops a sweep with exit code 130, keeping the rows done. No traceback reaches the user.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, NoReturn

import click
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from mn_deploy.plain import field_lines, printable, table_lines
from mn_deploy.usage import FiniteFloatRange, OneLineUsage
from sim import Result, ScenarioError, Simulation, load_scenario
from sim.cluster import dask_executor
from sim.explain import explain
from sim.overrides import PathError, parse_assignment, with_overrides
from sim.plots import run_figure, sweep_figure
from sim.reproduce import reproduce_command
from sim.rows import ERROR, REPLAY, Row
from sim.scenario import read_scenario_document
from sim.stats import DESCRIPTION, Estimate, Share
from sim.sweep import Sweep, SweepInterrupted, SweepResult, default_workers, read_sweep, run_sweep

Section = tuple[str, str, list[str], list[list[str]]]
"""(line label, table title, columns, rows)"""


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _header(result: Result, description: str | None) -> list[tuple[str, str]]:
    lines = [("Scenario", result.scenario), ("Seed", str(result.seed))]
    if description:
        lines.append(("Description", description))
    lines.append(("Ended at", _ms(result.end_ms)))
    return lines


def _sections(result: Result) -> list[Section]:
    """The summary as titled tables, rendered as Rich tables or as plain lines (mn_deploy/plain.py)."""
    durations = {row["deployment_id"]: row["duration_ms"] for row in result.metrics["per_deployment"]}
    deployments = [
        [d["deployment_id"], d["target_version"], d["status"], d["description"], _ms(durations[d["deployment_id"]])]
        for d in result.deployments
    ]
    versions = [
        [key, v["version"], v["manifest_name"] or "-", v["created_by"], "stable" if v["stable"] else "not stable"]
        for key, rows in result.versions.items()
        for v in rows
    ]
    metrics = result.metrics
    figures = [
        ["min_serving", str(metrics["min_serving"])],
        ["unhealthy_instances", str(metrics["unhealthy_instances"])],
        ["exposure_ms", f"{metrics['exposure_ms']:.1f}"],
    ]
    sections: list[Section] = [
        ("Deployment", "Deployments", ["id", "version", "status", "description", "duration"], deployments),
        ("Version", "Versions", ["key", "version", "manifest", "created by", "stable"], versions),
        ("Metric", "Metrics", ["name", "value"], figures),
    ]
    refused = [[_ms(e["t_ms"]), json.dumps(e["action"]), e["message"]] for e in result.errors]
    if refused:
        sections.append(("Refused", "Refused actions", ["at", "action", "message"], refused))
    return sections


def plain_screen(header: list[tuple[str, str]], sections: list[Section]) -> None:
    lines = field_lines(header)
    for label, _, columns, rows in sections:
        lines += table_lines(label, columns, rows)
    for line in lines:
        click.echo(line)


def rich_screen(header: list[tuple[str, str]], sections: list[Section]) -> None:
    console = Console()
    lines = [f"[bold]{label}:[/bold] {escape(value)}" for label, value in header]
    console.print(Panel("\n".join(lines), title="mn-deploy sim"))
    for _, title, columns, rows in sections:
        table = Table(title=title, title_justify="left")
        for column in columns:  # folded rather than cut: a name or a path is no use with an ellipsis in it
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*row)
        console.print(table)


def is_terminal(stream: IO[str]) -> bool:
    return os.environ.get("MN_CLI_OUTPUT", "").lower() != "plain" and stream.isatty()


def plain_output() -> bool:
    return not is_terminal(sys.stdout)


def _save_plot(result: Result, path: Path) -> None:
    run_figure(result).savefig(path, dpi=100)


def bad_input(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def bad_scenario(file: str, error: ScenarioError) -> NoReturn:
    """A bad scenario or sweep file: each of its problems on its own `error:` line (the first 50, then a count)."""
    for line in error.lines():
        click.echo(f"error: {file}: {line}", err=True)
    sys.exit(2)


def warn_unknown_keys(file: str, warnings: tuple[str, ...]) -> None:
    """Warnings about an input that runs all the same (unknown policy keys), one line each on stderr."""
    for warning in warnings:
        click.echo(f"warning: {file}: {warning}", err=True)


@click.group(name="sim", cls=OneLineUsage)
def sim() -> None:
    """Simulate rollouts with the real controller on SimPy time."""


@sim.command("run")
@click.argument("file")
@click.option("--seed", type=click.IntRange(min=0), help="Override the scenario's seed.")
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="PATH=VALUE",
    help="Set a value of the scenario by dotted path (VALUE is JSON, else text), as a sweep point does.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result JSON alone on stdout.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Save timeline and capacity plots.")
@click.option("--until-ms", type=FiniteFloatRange(min=0), help="End the run at this simulated time.")
@click.option(
    "--trace",
    "trace_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the run as a trace (docs/traces.md), the format `deployment export` writes for a live rollout.",
)
@click.option(
    "--explain",
    "tell_story",
    is_flag=True,
    help="After the summary, tell each decision of the controller with the rule behind it (docs/rules.md).",
)
def run(
    file: str,
    seed: int | None,
    assignments: tuple[str, ...],
    as_json: bool,
    plot: Path | None,
    until_ms: float | None,
    trace_path: Path | None,
    tell_story: bool,
) -> None:
    """Run scenario FILE and summarise the deployments, versions and metrics."""
    if as_json and tell_story:
        bad_input("--explain and --json exclude each other: the story is for people (from Python: sim.explain)")
    try:
        overrides = dict(parse_assignment(text) for text in assignments)
        scenario = load_scenario(with_overrides(read_scenario_document(file), overrides))
    except PathError as error:
        bad_input(f"{file}: --set {error}")
    except ScenarioError as error:
        bad_scenario(file, error)
    warn_unknown_keys(file, scenario.warnings)
    seed = scenario.seed if seed is None else seed
    check_writable(trace_path)
    simulation = Simulation(scenario, seed, until_ms, record=trace_path is not None)
    try:
        result = simulation.run()
    except Exception as error:
        replay = reproduce_command(file, seed, overrides, until_ms)
        problem = f"{type(error).__name__}: {error}"
        click.echo(f"error: the run failed at seed {seed} ({problem}); replay: {replay}", err=True)
        sys.exit(1)
    if trace_path is not None:
        _save(trace_path, lambda path: path.write_text(json.dumps(simulation.trace(), ensure_ascii=False) + "\n"))
    if plot is not None:
        try:
            _save_plot(result, plot)
        except OSError as error:
            bad_input(f"{plot}: cannot write the plot: {error.strerror or error}")
    if as_json:
        click.echo(result.dumps())
        return
    header = _header(result, scenario.description)
    if plot is not None:
        header.append(("Plot", str(plot)))
    sections = _sections(result) + ([_story(result)] if tell_story else [])
    (plain_screen if plain_output() else rich_screen)(header, sections)


def _story(result: Result) -> Section:
    """`sim.explain`'s lines as a table: when (a span when merged), what, to whom, and by which rule."""
    rows = [
        [
            "-".join(dict.fromkeys(f"{t / 1000:.1f}" for t in (line.from_ms, line.to_ms))),
            line.deployment_id or "-",
            line.what,
            line.agents_text() or "-",
            line.rule or "-",
            line.why,
        ]
        for line in explain(result)
    ]
    return ("Story", "What happened, and why", ["at (s)", "deployment", "what", "agents", "rule", "why"], rows)


def _interval(low: float | None, high: float | None, digits: int) -> str:
    return "-" if low is None or high is None else f"[{low:.{digits}f}, {high:.{digits}f}]"


def _estimate(estimate: Estimate) -> list[str]:
    mean = "-" if estimate.mean is None else f"{estimate.mean:.1f}"
    return [str(estimate.n), mean, _interval(estimate.low, estimate.high, 1)]


def _share(share: Share) -> list[str]:
    return [f"{share.share:.3f}", _interval(share.low, share.high, 3)]


_LISTED_FAILURES = 5


def _sweep_sections(result: SweepResult) -> list[Section]:
    """Per point its parameters, outcome shares and metric means, long form (a line per figure), then the
    first failed runs with their replay commands."""
    sweep, summary = result.sweep, result.summary
    points = [[str(s.point), sweep.label(sweep.points[s.point]), str(s.runs), str(s.errors)] for s in summary]
    outcomes = [[str(s.point), name, *_share(share)] for s in summary for name, share in s.outcomes.items()]
    metrics = [[str(s.point), name, *_estimate(estimate)] for s in summary for name, estimate in s.metrics.items()]
    sections: list[Section] = [
        ("Point", "Points", ["point", "parameters", "runs", "errors"], points),
        ("Outcome", "Outcome shares (95% Wilson interval)", ["point", "outcome", "share", "interval"], outcomes),
        ("Metric", "Metric means (95% bootstrap interval)", ["point", "metric", "n", "mean", "interval"], metrics),
    ]
    failed = [row for row in result.rows if row["outcome"] == ERROR][:_LISTED_FAILURES]
    if failed:
        rows = [[str(r["point"]), str(r["run"]), str(r["seed"]), r[ERROR], r[REPLAY]] for r in failed]
        sections.append(("Failed", "Failed runs", ["point", "run", "seed", "error", "replay"], rows))
    return sections


def _failed_runs(result: SweepResult) -> int:
    return sum(1 for row in result.rows if row["outcome"] == ERROR)


def _sweep_header(result: SweepResult, workers: str, files: list[tuple[str, Path | None]]) -> list[tuple[str, str]]:
    sweep = result.sweep
    lines = [("Sweep", sweep.name), ("Scenario", sweep.scenario_file)]
    if sweep.description:
        lines.append(("Description", sweep.description))
    total = len(sweep.points) * sweep.runs
    lines += [
        ("Runs", f"{sweep.runs} per point x {len(sweep.points)} points = {total}"),
        ("Seed", str(sweep.seed)),
        ("Workers", workers),
        ("Intervals", DESCRIPTION),
    ]
    failures = _failed_runs(result)
    if failures:
        lines.append(("Failed runs", f"{failures} (at most {_LISTED_FAILURES} listed below)"))
    return lines + [(label, str(path)) for label, path in files if path is not None]


def _save_sweep_plot(result: SweepResult, path: Path, metric: str | None) -> None:
    sweep_figure(result, metric=metric).savefig(path, dpi=100)


@contextmanager
def run_progress(total: int) -> Iterator[Callable[[Row], None] | None]:
    """A Rich progress bar on stderr when it is a terminal; nothing otherwise."""
    if not is_terminal(sys.stderr):
        yield None
        return
    columns = (TextColumn("runs"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("runs", total=total)
        yield lambda row: bar.advance(task)


def check_writable(path: Path | None) -> None:
    """Fail before a long sweep rather than after it when an output cannot be written."""
    if path is not None and not os.access(path.parent, os.W_OK):
        bad_input(f"{path}: cannot write: {path.parent} is not a writable directory")


def _execute(sweep: Sweep, workers: int | None, address: str | None, out: Path | None) -> tuple[SweepResult, str]:
    """Run on a local pool or a Dask cluster; one-line errors for what cannot start, exit 130 on Ctrl-C."""
    total = len(sweep.points) * sweep.runs
    try:
        with ExitStack() as stack:
            executor = None
            if address is None:
                workers = workers or default_workers()
                where = f"{workers} processes"
            else:
                try:
                    executor, workers = stack.enter_context(dask_executor(address))
                except ImportError as error:
                    bad_input(str(error))
                except OSError as error:
                    bad_input(f"--dask {address}: cannot reach the scheduler: {error}")
                where = f"Dask at {address} ({workers} threads)"
            progress = stack.enter_context(run_progress(total))
            return run_sweep(sweep, executor=executor, workers=workers, out=out, progress=progress), where
    except KeyboardInterrupt as interrupted:
        done = len(interrupted.rows) if isinstance(interrupted, SweepInterrupted) else 0
        kept = f"; their rows are in {out}" if out is not None and done else ""
        click.echo(f"error: interrupted after {done} of {total} runs{kept}", err=True)
        sys.exit(130)
    except OSError as error:
        bad_input(f"{error.filename or out}: cannot write the rows: {error.strerror or error}")


def _save(path: Path | None, save: Callable[[Path], object]) -> None:
    if path is None:
        return
    try:
        save(path)
    except OSError as error:
        bad_input(f"{path}: cannot write: {error.strerror or error}")


SWEEP_NAME = "{sweep}"
"""In an output path, the sweep's name (its file's stem): what tells several sweeps' files apart."""

Outputs = tuple[Path | None, Path | None, Path | None]
"""One sweep's --out, --summary and --plot."""


def _read_sweeps(files: tuple[str, ...]) -> list[Sweep]:
    """Every file read and checked before anything runs; two sweeps of one name could not be told apart."""
    sweeps: dict[str, tuple[str, Sweep]] = {}
    for file in files:
        try:
            spec = read_sweep(file)
        except ScenarioError as error:
            bad_scenario(file, error)
        if spec.name in sweeps:
            same = sweeps[spec.name][0]
            bad_input(f"{file}: a sweep is named after its file's stem, and {same} is named {spec.name!r} too")
        sweeps[spec.name] = (file, spec)
    return [spec for _, spec in sweeps.values()]


def _check_metric(specs: list[Sweep], metric: str | None, plot: Path | None) -> None:
    """`--metric` picks the heatmap of `--plot`: refused, before anything runs, where there is none to pick."""
    if metric is None:
        return
    problem = None
    if plot is None:
        problem = "it chooses what the heatmap of --plot shows; give --plot too"
    for spec in specs:
        if problem is None and len(spec.grid) != 2:
            problem = f"sweep {spec.name} has {len(spec.grid)} grid axes; a heatmap needs two"
        if problem is None and metric not in spec.metrics:
            problem = f"sweep {spec.name} keeps only {', '.join(spec.metrics)}"
    if problem is not None:
        bad_input(printable(f"--metric {metric}: {problem}"))


def _sweep_and_save(
    spec: Sweep, paths: Outputs, workers: int | None, address: str | None, metric: str | None
) -> tuple[SweepResult, str, str]:
    """Run one sweep and write its summary and plot: its result, its summary JSON and where it ran."""
    rows_path, summary_path, plot_path = paths
    result, where = _execute(spec, workers, address, rows_path)
    document = json.dumps(result.summary_json(), ensure_ascii=False, allow_nan=False)
    _save(summary_path, lambda path: path.write_text(document + "\n", encoding="utf-8"))
    _save(plot_path, lambda path: _save_sweep_plot(result, path, metric))
    return result, document, where


def _outputs(spec: Sweep, out: Path | None, summary: Path | None, plot: Path | None, several: bool) -> Outputs:
    """A sweep's output paths, SWEEP_NAME replaced by its name; with several sweeps each path must hold it."""

    def path_of(option: str, path: Path | None) -> Path | None:
        if path is None:
            return None
        if several and SWEEP_NAME not in str(path):
            named = path.parent / f"{path.stem}-{SWEEP_NAME}{path.suffix}"
            bad_input(printable(f"{option} {path}: with several sweep files, put {SWEEP_NAME} in it ({named})"))
        return Path(str(path).replace(SWEEP_NAME, spec.name))

    return path_of("--out", out), path_of("--summary", summary), path_of("--plot", plot)


def _sweeps_sections(done: list[tuple[SweepResult, Outputs]]) -> list[Section]:
    """Several sweeps compared: a row per sweep, then each table of one sweep's summary holding every sweep's
    rows, its name in a first column, so a figure can be read across sweeps (and grepped: a line names its sweep)."""
    overview = [
        [
            result.sweep.name,
            result.sweep.scenario_file,
            f"{result.sweep.runs} x {len(result.sweep.points)} points",
            str(result.sweep.seed),
            str(_failed_runs(result)),
            ", ".join(str(path) for path in paths if path is not None) or "-",
        ]
        for result, paths in done
    ]
    columns = ["sweep", "scenario", "runs", "seed", "failed runs", "files"]
    merged: dict[str, Section] = {"Sweep": ("Sweep", "Sweeps", columns, overview)}
    for result, _ in done:
        for label, title, columns, rows in _sweep_sections(result):
            named = [[result.sweep.name, *row] for row in rows]
            if label in merged:
                merged[label][3].extend(named)
            else:
                merged[label] = (label, title, ["sweep", *columns], named)
    return list(merged.values())


@sim.command("sweep")
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option("--workers", type=click.IntRange(min=1), help="Processes running at once (default: the core count).")
@click.option("--dask", "address", metavar="ADDRESS", help="Run on the Dask cluster whose scheduler is at ADDRESS.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a CSV row per run as runs finish ({sweep} in it: the sweep's name, needed with several files).",
)
@click.option(
    "--summary",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the summary JSON ({sweep} in it: the sweep's name, needed with several files).",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Save outcome shares, duration CDFs and, for a two-axis grid, a heatmap ({sweep} in it as for --out).",
)
@click.option(
    "--metric",
    metavar="NAME",
    help="The metric --plot's heatmap shows (default: the first the sweep file lists); *_ms metrics in seconds.",
)
@click.option("--json", "as_json", is_flag=True, help="Print each sweep's summary JSON alone on stdout, a line each.")
def sweep(
    files: tuple[str, ...],
    workers: int | None,
    address: str | None,
    out: Path | None,
    summary: Path | None,
    plot: Path | None,
    metric: str | None,
    as_json: bool,
) -> None:
    """Run each sweep FILE: its scenario `runs` times at every grid point; summarise outcomes and metrics per point.

    Several files run one after the other, all read and checked first, and one summary compares them (a `sweep`
    column in every table); then --out, --summary and --plot must hold {sweep}, the sweep's name (its file's
    stem), so that each sweep gets its own files, and --json prints one summary a line, in the files' order."""
    specs = _read_sweeps(files)
    if workers is not None and address is not None:
        bad_input("--workers and --dask exclude each other: a Dask cluster brings its own workers")
    _check_metric(specs, metric, plot)
    outputs = [_outputs(spec, out, summary, plot, len(specs) > 1) for spec in specs]
    for spec, paths in zip(specs, outputs, strict=True):
        warn_unknown_keys(spec.scenario_file, spec.warnings)
        for path in paths:
            check_writable(path)
    done: list[tuple[SweepResult, Outputs]] = []
    where = ""
    for spec, paths in zip(specs, outputs, strict=True):
        result, document, where = _sweep_and_save(spec, paths, workers, address, metric)
        if as_json:
            click.echo(document)
        done.append((result, paths))
    if as_json:
        return
    show = plain_screen if plain_output() else rich_screen
    if len(done) > 1:
        show([("Sweeps", str(len(done))), ("Workers", where), ("Intervals", DESCRIPTION)], _sweeps_sections(done))
        return
    result, (rows_path, summary_path, plot_path) = done[0]
    named = [("Rows", rows_path), ("Summary", summary_path), ("Plot", plot_path)]
    show(_sweep_header(result, where, named), _sweep_sections(result))
