"""`mn-deploy sim verify`: does a scenario meet its requirements? (docs/verification.md)

It runs seeds until, for every requirement, the probability of violating it is shown below `--bound` (holds) or
above it (violated) at `--confidence`, and says so with an exit code a CI job can act on: 0 every requirement
holds, 1 one is violated, 2 bad input, 3 undecided within `--max-runs`, 130 interrupted.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import click
from rich.console import Console

from mn_deploy.requirement_options import EXIT_INTERRUPTED, read_stated, requirement_options, run_count
from mn_deploy.sim_cli import Section, bad_input, bad_scenario, plain_output, plain_screen, rich_screen
from sim.requirements import RequirementError
from sim.schema import ScenarioError
from sim.sequential import Verdict
from sim.verification import Judgement, Verification, verify
from sim.worst import WorstCase
from sim.worst import search_worst as find_worst

EXIT_CODES = {Verdict.HOLDS: 0, Verdict.VIOLATED: 1, Verdict.UNDECIDED: 3}
REPRODUCE = "reproduce"


def measured_value(value: Any) -> str:
    """A measure as the tables show it: missing, infinity said in words, one decimal."""
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


JUDGEMENT_COLUMNS = ["requirement", "verdict", "runs", "violations", "P(violation) interval"]


def judgement_row(judgement: Judgement) -> list[str]:
    """A requirement's verdict as a table row of JUDGEMENT_COLUMNS (a tuning's winner prints the same)."""
    decision = judgement.decision
    return [
        str(judgement.requirement),
        decision.verdict.value,
        str(decision.runs),
        str(decision.violations),
        f"[{decision.low:.4f}, {decision.high:.4f}]",
    ]


def _sections(verification: Verification) -> list[Section]:
    rows = [judgement_row(j) for j in verification.judgements]
    firsts = [
        [str(j.requirement), str(f.run), str(f.seed), f.error or measured_value(f.value), f.reproduce]
        for j in verification.judgements
        if (f := j.first_violation) is not None
    ]
    sections: list[Section] = [("Requirement", "Requirements", JUDGEMENT_COLUMNS, rows)]
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
            found.error or measured_value(found.value),
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
    rich_screen(header, tables)
    console = Console(highlight=False)
    for label, _, _, rows in replayed:
        for row in rows:
            console.print(f"{label} ({row[0]}), replay: {row[-1]}", soft_wrap=True, markup=False)


@click.command("verify")
@click.argument("file")
@requirement_options
@click.option(
    "--search-worst",
    is_flag=True,
    help="Also try adversarial timings within the behaviors' supports; a violating schedule found exits 1.",
)
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
    document, overrides, stated = read_stated(file, assignments, requirements)
    try:
        with run_count() as progress:
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
        bad_scenario(file, error)
    except RequirementError as error:
        bad_input(f"{file}: {error.message}")
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
        (plain_screen if plain_output() else _show)(header, sections)
    found = worst is not None and bool(worst.counterexamples)
    sys.exit(EXIT_CODES[Verdict.VIOLATED if found else verification.verdict])
