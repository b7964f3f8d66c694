"""`mn-deploy sim verify`: does a scenario meet its requirements? (docs/verification.md)

It runs seeds until, for every requirement, the probability of violating it is shown below `--bound` (holds) or
above it (violated) at `--confidence`, and says so with an exit code a CI job can act on: 0 every requirement
holds, 1 one is violated, 2 bad input, 3 undecided within `--max-runs`, 130 interrupted.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from mn_deploy.sim_cli import Section, _bad_input, _plain, _plain_output, _rich, _terminal
from mn_deploy.usage import FiniteFloatRange
from sim.jsonfile import read_json
from sim.overrides import PathError, parse_assignment, with_overrides
from sim.requirements import RequirementError, parse_requirement
from sim.schema import ScenarioError
from sim.sequential import MAX_RUNS, Verdict
from sim.verification import BOUND, CONFIDENCE, DEFAULT_MAX_RUNS, Verification, verify
from sim.worst import WorstCase
from sim.worst import search_worst as find_worst

EXIT_CODES = {Verdict.HOLDS: 0, Verdict.VIOLATED: 1, Verdict.UNDECIDED: 3}
EXIT_INTERRUPTED = 130
REPRODUCE = "reproduce"


def _value(value: Any) -> str:
    if value is None:
        return "missing"
    if isinstance(value, float):
        return "infinity (never reverted)" if math.isinf(value) else f"{value:.1f}"
    return str(value)


def _header(verification: Verification) -> list[tuple[str, str]]:
    plan = verification.plan
    looks = ", ".join(str(n) for n in plan.looks)
    return [
        ("Scenario", verification.scenario),
        ("File", verification.file),
        ("Verdict", verification.verdict.value),
        ("Question", f"is the probability of violating each requirement below {plan.bound:g}?"),
        (
            "Statistics",
            f"Clopper-Pearson bounds at {plan.confidence:g} confidence, split over {len(plan.looks)} looks "
            f"(at {looks} runs): each bound one-sided at level {plan.alpha:.3g}",
        ),
        ("Runs", str(verification.runs)),
    ]


def _sections(verification: Verification) -> list[Section]:
    rows = [
        [
            str(j.requirement),
            j.decision.verdict.value,
            str(j.decision.runs),
            str(j.decision.violations),
            f"[{j.decision.low:.4f}, {j.decision.high:.4f}]",
        ]
        for j in verification.judgements
    ]
    firsts = [
        [str(j.requirement), str(f.run), str(f.seed), f.error or _value(f.value), f.reproduce]
        for j in verification.judgements
        if (f := j.first_violation) is not None
    ]
    sections: list[Section] = [
        (
            "Requirement",
            "Requirements",
            ["requirement", "verdict", "runs", "violations", "P(violation) interval"],
            rows,
        )
    ]
    if firsts:
        columns = ["requirement", "run", "seed", "measured", REPRODUCE]
        sections.append(("First violation", "First violations", columns, firsts))
    return sections


def _worst_line(worst: WorstCase) -> str:
    tried = f"{worst.tried} of {worst.schedules} schedules of {len(worst.knobs)} knobs tried"
    violated = len(worst.counterexamples)
    return f"{tried}; " + (f"{violated} requirement(s) violated" if violated else "none violates a requirement")


def _worst_sections(worst: WorstCase) -> list[Section]:
    rows = [
        [
            str(found.requirement),
            ", ".join(f"{path}={value:g}" for path, value in found.schedule.items()) or "as drawn",
            found.error or _value(found.value),
            found.reproduce,
        ]
        for found in worst.counterexamples
    ]
    columns = ["requirement", "schedule", "measured", REPRODUCE]
    return [("Worst case", "Violating schedules", columns, rows)] if rows else []


def _show(header: list[tuple[str, str]], sections: list[Section]) -> None:
    """Rich tables without the replay commands, which follow in full: a table cell would cut them short."""
    replayed = [section for section in sections if section[2][-1] == REPRODUCE]
    tables = [
        (label, title, columns[:-1], [row[:-1] for row in rows]) if columns[-1] == REPRODUCE else section
        for section in sections
        for label, title, columns, rows in [section]
    ]
    _rich(header, tables)
    console = Console(highlight=False)
    for label, _, _, rows in replayed:
        for row in rows:
            console.print(f"{label} ({row[0]}), replay: {row[-1]}", soft_wrap=True, markup=False)


@contextmanager
def _progress() -> Iterator[Callable[[int], None] | None]:
    """A count of the runs done on stderr when it is a terminal (how many a verdict needs is not known ahead)."""
    if not _terminal(sys.stderr):
        yield None
        return
    columns = (SpinnerColumn(), TextColumn("{task.completed} runs"), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("runs", total=None)
        yield lambda done: bar.update(task, completed=done)


@click.command("verify")
@click.argument("file")
@click.option(
    "--require",
    "requirements",
    multiple=True,
    metavar="EXPR",
    help="A requirement, MEASURE OP VALUE (`max_bad_serving <= 2`); repeatable. Given, they replace the file's.",
)
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="PATH=VALUE",
    help="Set a value of the scenario by dotted path (VALUE is JSON, else text), as for `sim run`.",
)
@click.option(
    "--bound",
    type=FiniteFloatRange(0, 1, min_open=True, max_open=True),
    default=BOUND,
    show_default=True,
    help="A requirement holds when its probability of violation is shown below this, is violated when above.",
)
@click.option(
    "--confidence",
    type=FiniteFloatRange(0, 1, min_open=True, max_open=True),
    default=CONFIDENCE,
    show_default=True,
    help="The probability that no verdict given is wrong, per requirement.",
)
@click.option(
    "--max-runs",
    type=click.IntRange(1, MAX_RUNS),
    default=DEFAULT_MAX_RUNS,
    show_default=True,
    help="Give up (exit 3) after this many runs with a requirement still undecided.",
)
@click.option(
    "--search-worst",
    is_flag=True,
    help="Also try adversarial timings within the behaviors' supports; a violating schedule found exits 1.",
)
@click.option("--workers", type=click.IntRange(min=1), help="Processes running at once (default: the core count).")
@click.option("--json", "as_json", is_flag=True, help="Print the verification JSON alone on stdout.")
def verify_command(
    file: str,
    requirements: tuple[str, ...],
    assignments: tuple[str, ...],
    bound: float,
    confidence: float,
    max_runs: int,
    search_worst: bool,
    workers: int | None,
    as_json: bool,
) -> None:
    """Check that scenario FILE meets its requirements: run seeds until each requirement's probability of violation
    is shown below --bound (holds) or above it (violated) at --confidence. Exit 0 all hold, 1 one is violated,
    2 bad input, 3 undecided within --max-runs. With --search-worst, a violating adversarial schedule exits 1 too."""
    try:
        overrides = dict(parse_assignment(text) for text in assignments)
        document = with_overrides(read_json(file), overrides)
        stated = [parse_requirement(text) for text in requirements] or None
    except PathError as error:
        _bad_input(f"{file}: --set {error}")
    except ScenarioError as error:
        _bad_input(f"{file}: {error}")
    except RequirementError as error:
        _bad_input(f"--require: {error.message}")
    try:
        with _progress() as progress:
            verification = verify(
                document,
                stated,
                file=file,
                overrides=overrides,
                bound=bound,
                confidence=confidence,
                max_runs=max_runs,
                workers=workers,
                progress=progress,
            )
            worst = None
            if search_worst:
                judged = [j.requirement for j in verification.judgements]
                worst = find_worst(document, judged, file=file, overrides=overrides, workers=workers)
    except ScenarioError as error:
        _bad_input(f"{file}: {error}")
    except RequirementError as error:
        _bad_input(f"{file}: {error.message}")
    except KeyboardInterrupt:
        click.echo("error: interrupted before a verdict", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if as_json:
        report = verification.to_json()
        if worst is not None:
            report["worst_case"] = worst.to_json()
        click.echo(json.dumps(report, ensure_ascii=False, allow_nan=False))
    else:
        header, sections = _header(verification), _sections(verification)
        if worst is not None:
            header.append(("Worst case", _worst_line(worst)))
            sections += _worst_sections(worst)
        (_plain if _plain_output() else _show)(header, sections)
    found = worst is not None and bool(worst.counterexamples)
    sys.exit(EXIT_CODES[Verdict.VIOLATED if found else verification.verdict])
