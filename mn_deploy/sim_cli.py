"""`mn-deploy sim`: run a scenario file on simulated time and show, save or pipe what happened.

Bad input is one line naming the JSONPath of the problem and exit code 2; a run that breaks prints its
seed and the one command that replays it, with exit code 1. No traceback reaches the user.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import NoReturn

import click
from matplotlib.figure import Figure
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from sim import Result, ScenarioError, read_scenario, run_scenario
from sim.plots import capacity, timeline

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
    """The summary as titled tables, rendered as Rich tables or as `Title: a | b | c` lines."""
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


def _plain(header: list[tuple[str, str]], sections: list[Section]) -> None:
    for label, value in header:
        click.echo(f"{label}: {value}")
    for label, _, _, rows in sections:
        for row in rows:
            click.echo(f"{label}: {' | '.join(row)}")


def _rich(header: list[tuple[str, str]], sections: list[Section]) -> None:
    console = Console()
    lines = [f"[bold]{label}:[/bold] {escape(value)}" for label, value in header]
    console.print(Panel("\n".join(lines), title="mn-deploy sim"))
    for _, title, columns, rows in sections:
        table = Table(title=title, title_justify="left")
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*row)
        console.print(table)


def _plain_output() -> bool:
    return os.environ.get("MN_CLI_OUTPUT", "").lower() == "plain" or not sys.stdout.isatty()


def _save_plot(result: Result, path: Path) -> None:
    figure = Figure(figsize=(13, 10), layout="constrained")
    top, bottom = figure.subplots(2, 1)
    timeline(result, top)
    capacity(result, bottom)
    figure.savefig(path, dpi=100)


def _bad_input(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


@click.group(name="sim")
def sim() -> None:
    """Simulate rollouts with the real controller on SimPy time."""


@sim.command("run")
@click.argument("file")
@click.option("--seed", type=click.IntRange(min=0), help="Override the scenario's seed.")
@click.option("--json", "as_json", is_flag=True, help="Print the result JSON alone on stdout.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Save timeline and capacity plots.")
@click.option("--until-ms", type=click.FloatRange(min=0), help="End the run at this simulated time.")
def run(file: str, seed: int | None, as_json: bool, plot: Path | None, until_ms: float | None) -> None:
    """Run scenario FILE and summarise the deployments, versions and metrics."""
    try:
        scenario = read_scenario(file)
    except ScenarioError as error:
        _bad_input(f"{file}: {error}")
    seed = scenario.seed if seed is None else seed
    try:
        result = run_scenario(scenario, seed=seed, until_ms=until_ms)
    except Exception as error:
        replay = f"mn-deploy sim run {file} --seed {seed}" + ("" if until_ms is None else f" --until-ms {until_ms:g}")
        problem = f"{type(error).__name__}: {error}"
        click.echo(f"error: the run failed at seed {seed} ({problem}); replay: {replay}", err=True)
        sys.exit(1)
    if plot is not None:
        try:
            _save_plot(result, plot)
        except OSError as error:
            _bad_input(f"{plot}: cannot write the plot: {error.strerror or error}")
    if as_json:
        click.echo(result.dumps())
        return
    header = _header(result, scenario.description)
    if plot is not None:
        header.append(("Plot", str(plot)))
    (_plain if _plain_output() else _rich)(header, _sections(result))
