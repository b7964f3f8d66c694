"""`mn-deploy sim tune`: which policy of a grid is the fastest one that meets the requirements?
(docs/verification.md "Tuning")

It races the grid's candidates on common seeds (sim/tuning.py) and says so with an exit code a CI job can act on:
0 a winner, 1 no candidate meets the requirements, 2 bad input, 3 undecided within `--max-runs`, 130 interrupted.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from mn_deploy.requirement_options import EXIT_INTERRUPTED, read_stated, requirement_options, run_count
from mn_deploy.sim_cli import Section, bad_input, bad_scenario, check_writable, plain_output, plain_screen, rich_screen
from mn_deploy.verify_cli import JUDGEMENT_COLUMNS, judgement_row, measured_value
from sim.overrides import PathError, parse_assignment
from sim.requirements import RequirementError
from sim.schema import ScenarioError
from sim.tuning import MINIMIZABLE, Candidate, GridError, Standing, Tuning, TuningVerdict, tune
from sim.tuning_plot import candidates_figure

EXIT_CODES = {TuningVerdict.FOUND: 0, TuningVerdict.NONE: 1, TuningVerdict.UNDECIDED: 3}


def parse_axis(text: str) -> tuple[str, list[Any]]:
    """`PATH=V1,V2,...`: the values as one JSON array when they read as one (`x=[1,2],[3]`, `x="a,b"`), else each
    comma-separated part as `--set` reads a VALUE (JSON, else text). Raises PathError."""
    path, equals, raw = text.partition("=")
    if not equals or not path or not raw:
        raise PathError(text, "expected PATH=V1,V2,...")
    whole = parse_assignment(f"{path}=[{raw}]")[1]
    if isinstance(whole, list):
        return path, whole
    parts = raw.split(",")
    if not all(parts):
        raise PathError(path, f"an empty value in {raw!r}")
    return path, [parse_assignment(f"{path}={part}")[1] for part in parts]


def _estimate(candidate: Candidate) -> str:
    estimate = candidate.estimate
    if estimate.mean is None:
        return "-"
    if estimate.low is None or estimate.high is None:
        return measured_value(estimate.mean)
    return f"{estimate.mean:.1f} [{estimate.low:.1f}, {estimate.high:.1f}]"


def _header(tuning: Tuning) -> list[tuple[str, str]]:
    plan, winner, runner_up = tuning.plan, tuning.winner, tuning.runner_up
    return [
        ("Scenario", tuning.scenario),
        ("File", tuning.file),
        ("Verdict", tuning.verdict.value),
        (
            "Question",
            f"which of {len(tuning.candidates)} candidates has the smallest mean {tuning.minimize} among those whose "
            f"probability of violating each requirement is shown below {plan.bound:g}?",
        ),
        (
            "Statistics",
            f"Clopper-Pearson bounds at {plan.confidence:g} confidence over {len(plan.looks)} looks (each one-sided "
            f"at {plan.alpha:.3g}); sign tests on common seeds, each at {tuning.comparison_alpha:.3g}",
        ),
        ("Winner", "none" if winner is None else f"{winner.label}: mean {tuning.minimize} {_estimate(winner)}"),
        ("Runner-up", "none" if runner_up is None else f"{runner_up.label} ({runner_up.standing.value})"),
        (
            "Runs",
            f"{tuning.runs} of the {tuning.exhaustive_runs} an exhaustive sweep needs ({len(tuning.candidates)} "
            f"candidates x {tuning.verification_runs} runs): ratio {tuning.ratio:.3f}",
        ),
    ]


def _sections(tuning: Tuning) -> list[Section]:
    rows = [
        [
            c.label,
            c.standing.value,
            str(c.runs),
            _estimate(c),
            f"{c.violation_high:.4f}",
            tuning.why_out(c) or "-",
        ]
        for c in sorted(tuning.candidates, key=lambda c: (c is not tuning.winner, c.standing != Standing.HOLDS))
    ]
    columns = ["candidate", "standing", "runs", f"mean {tuning.minimize} [95%]", "P(violation) up to", "why out"]
    sections: list[Section] = [("Candidate", "Candidates", columns, rows)]
    if tuning.winner is not None:
        bounds = [judgement_row(j) for j in tuning.winner.judgements]
        sections.append(("Winner requirement", "The winner's verified bounds", JUDGEMENT_COLUMNS, bounds))
    return sections


def _save_plot(tuning: Tuning, path: Path) -> None:
    try:
        candidates_figure(tuning).savefig(path, dpi=100)
    except OSError as error:
        bad_input(f"{path}: cannot write the plot: {error.strerror or error}")


@click.command("tune")
@click.argument("file")
@click.option(
    "--vary",
    "axes",
    multiple=True,
    required=True,
    metavar="PATH=V1,V2,...",
    help="A grid axis: a dotted path of the scenario and its values (each JSON, else text), as a sweep's grid; "
    "repeatable. The candidates are every combination.",
)
@click.option(
    "--minimize",
    required=True,
    type=click.Choice(MINIMIZABLE),
    help="The measure whose mean the winner has smallest.",
)
@requirement_options
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Save a plot of every candidate's measure against its requirement margin.",
)
def tune_command(
    file: str,
    axes: tuple[str, ...],
    minimize: str,
    requirements: tuple[str, ...],
    assignments: tuple[str, ...],
    bound: float,
    confidence: float,
    max_runs: int,
    workers: int | None,
    as_json: bool,
    plot: Path | None,
) -> None:
    """Find, among every combination of the --vary values over scenario FILE, the policy with the smallest mean
    --minimize measure that is verified (as by `sim verify`) to meet the requirements. Candidates run on common
    seeds and leave the race as soon as one is shown to violate a requirement or to be slower than another.
    Exit 0 a winner, 1 no candidate meets the requirements, 2 bad input, 3 undecided within --max-runs."""
    document, overrides, stated = read_stated(file, assignments, requirements)
    check_writable(plot)
    vary: dict[str, list[Any]] = {}
    try:
        for text in axes:
            path, values = parse_axis(text)
            if path in vary:
                raise PathError(path, "given twice")
            vary[path] = values
    except PathError as error:
        bad_input(f"--vary {error}")
    try:
        with run_count() as progress:
            tuning = tune(
                document,
                vary,
                stated,
                minimize,
                file=file,
                overrides=overrides,
                bound=bound,
                confidence=confidence,
                max_runs=max_runs,
                workers=workers,
                progress=progress,
            )
    except PathError as error:
        bad_input(f"{file}: --vary {error}")
    except ScenarioError as error:
        bad_scenario(file, error)
    except RequirementError as error:
        bad_input(f"{file}: {error.message}")
    except GridError as error:
        bad_input(f"--vary: {error}")
    except KeyboardInterrupt:
        click.echo("error: interrupted before a verdict", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if plot is not None:
        _save_plot(tuning, plot)
    if as_json:
        click.echo(json.dumps(tuning.to_json(), ensure_ascii=False, allow_nan=False))
    else:
        header, sections = _header(tuning), _sections(tuning)
        if plot is not None:
            header.append(("Plot", str(plot)))
        (plain_screen if plain_output() else rich_screen)(header, sections)
    sys.exit(EXIT_CODES[tuning.verdict])
