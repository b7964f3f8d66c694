"""What `sim verify` and `sim tune` share: the options that state requirements and the statistics, reading the
scenario with its `--set` values, and the count of runs on stderr (docs/verification.md)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from mn_deploy.sim_cli import bad_input, bad_scenario, is_terminal
from mn_deploy.usage import FiniteFloatRange
from sim.jsonfile import read_json
from sim.overrides import PathError, parse_assignment, with_overrides
from sim.requirements import Requirement, RequirementError, parse_requirement
from sim.schema import ScenarioError
from sim.sequential import MAX_RUNS
from sim.verification import BOUND, CONFIDENCE, DEFAULT_MAX_RUNS

EXIT_INTERRUPTED = 130
F = TypeVar("F", bound=Callable[..., Any])


def requirement_options(command: F) -> F:
    """--require, --set, --bound, --confidence, --max-runs, --workers and --json, in that order."""
    options = [
        click.option(
            "--require",
            "requirements",
            multiple=True,
            metavar="EXPR",
            help="A requirement, MEASURE OP VALUE (`max_bad_serving <= 2`); repeatable. Given, they replace the "
            "file's.",
        ),
        click.option(
            "--set",
            "assignments",
            multiple=True,
            metavar="PATH=VALUE",
            help="Set a value of the scenario by dotted path (VALUE is JSON, else text), as for `sim run`.",
        ),
        click.option(
            "--bound",
            type=FiniteFloatRange(0, 1, min_open=True, max_open=True),
            default=BOUND,
            show_default=True,
            help="A requirement holds when its probability of violation is shown below this, is violated when above.",
        ),
        click.option(
            "--confidence",
            type=FiniteFloatRange(0, 1, min_open=True, max_open=True),
            default=CONFIDENCE,
            show_default=True,
            help="The probability that no verdict given is wrong, per requirement.",
        ),
        click.option(
            "--max-runs",
            type=click.IntRange(1, MAX_RUNS),
            default=DEFAULT_MAX_RUNS,
            show_default=True,
            help="Give up (exit 3) after this many runs (of one policy) with a requirement still undecided.",
        ),
        click.option(
            "--workers", type=click.IntRange(min=1), help="Processes running at once (default: the core count)."
        ),
        click.option("--json", "as_json", is_flag=True, help="Print the report as JSON alone on stdout."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def read_stated(
    file: str, assignments: tuple[str, ...], requirements: tuple[str, ...]
) -> tuple[Any, dict[str, Any], list[Requirement] | None]:
    """The scenario with its --set values, those values, and the requirements stated (None: the file's); bad
    input is one line and exit 2."""
    try:
        overrides = dict(parse_assignment(text) for text in assignments)
        document = with_overrides(read_json(file), overrides)
        stated = [parse_requirement(text) for text in requirements] or None
    except PathError as error:
        bad_input(f"{file}: --set {error}")
    except ScenarioError as error:
        bad_scenario(file, error)
    except RequirementError as error:
        bad_input(f"--require: {error.message}")
    return document, overrides, stated


@contextmanager
def run_count() -> Iterator[Callable[[int], None] | None]:
    """A count of the runs done on stderr when it is a terminal (how many a verdict needs is not known ahead)."""
    if not is_terminal(sys.stderr):
        yield None
        return
    columns = (SpinnerColumn(), TextColumn("{task.completed} runs"), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("runs", total=None)
        yield lambda done: bar.update(task, completed=done)
