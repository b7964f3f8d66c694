"""`mn-deploy sim calibrate`: fit scenario behaviors from recorded rollouts (traces) and say how well they fit.

Every trace is read and checked before anything is written, so bad input (an unreadable file, bad JSON, a
trace this version cannot read) is one line, exit 2, and no file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from mn_deploy.output import Output
from sim import CalibrationError, Fit, ScenarioError, calibrate
from sim.calibrate import BY, MIN_OBSERVATIONS
from sim.fitting import CONFIDENCE, Interval
from sim.jsonfile import read_json

EXIT_BAD_INPUT = 2
COLUMNS = ("group", "field", "family", "estimate [95%]", "n", "KS p", "note")


def _number(value: float) -> str:
    """Milliseconds to a tenth, probabilities and spreads to three significant digits."""
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3g}"


def _interval(interval: Interval) -> str:
    low, high = interval
    return f"[{_number(low)}, {'inf' if high is None else _number(high)}]"


def _estimates(fit: Fit) -> str:
    """Each parameter with its interval (`median=1483.4 [1457.6, 1509.5]`); an interval alone when the field has
    no estimate (a crash mean bounded below by the exposure)."""
    if fit.family == "empirical":
        return f"{len(fit.value['empirical'])} values"
    names = list(dict.fromkeys([*fit.parameters, *fit.intervals]))
    shown = []
    for name in names:
        value = f"{name}={_number(fit.parameters[name])}" if name in fit.parameters else f"{name}"
        interval = fit.intervals.get(name)
        shown.append(value if interval is None else f"{value} {_interval(interval)}")
    return " ".join(shown) or "-"


def _row(fit: Fit) -> list[str]:
    return [
        str(fit.manifest if fit.agent is None else fit.agent),
        fit.field,
        fit.family,
        _estimates(fit),
        str(fit.n),
        "-" if fit.ks_p is None else f"{fit.ks_p:.3g}",
        fit.note or "-",
    ]


def _read(files: tuple[str, ...], output: Output) -> list[Any]:
    traces = []
    for file in files:
        try:
            traces.append(read_json(file))
        except ScenarioError as error:
            output.exit(f"{file}: {error}", EXIT_BAD_INPUT)
    return traces


@click.command("calibrate")
@click.argument("traces", nargs=-1, required=True, metavar="TRACE...")
@click.option(
    "--by",
    type=click.Choice(BY),
    default="manifest",
    show_default=True,
    help="Fit per manifest (versions with one spec digest are one manifest) or per agent (under default.agents).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the fitted behaviors, a scenario's `behaviors` object, to this file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the fits and behaviors as one JSON document.")
def calibrate_command(traces: tuple[str, ...], by: str, out: Path | None, as_json: bool) -> None:
    """Fit scenario behaviors (start, ready and check latencies, start and check failure probabilities, a crash
    hazard, batch run times) from the raw facts of TRACE files (`sim run --trace`, `deployment export`), and
    print what was fitted from how many observations, how well, with 95% intervals. A field seen fewer than
    5 times is left unset."""
    output = Output.detect(as_json)
    documents = _read(traces, output)
    try:
        calibration = calibrate(documents, by=by)
    except CalibrationError as error:
        output.exit(f"{traces[error.index]}: {error.message}", EXIT_BAD_INPUT)
    if not calibration.observations:
        output.exit("nothing to fit: the traces hold no instance of a known manifest or agent", EXIT_BAD_INPUT)
    if out is not None:
        try:
            out.write_text(json.dumps(calibration.behaviors, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        except OSError as error:
            output.exit(f"{out}: cannot write: {error.strerror or error}", EXIT_BAD_INPUT)
    if as_json:
        click.echo(json.dumps(calibration.to_json(), allow_nan=False))
        return
    instances = sum(observed.instances for observed in calibration.observations.values())
    fields = [
        ("Traces", str(len(traces))),
        ("Instances", str(instances)),
        ("By", by),
        ("Intervals", f"{CONFIDENCE:.0%}; fields seen fewer than {MIN_OBSERVATIONS} times are left unset"),
    ]
    if out is not None:
        fields.append(("Behaviors", str(out)))
    output.show_fields("", "mn-deploy sim calibrate", fields)
    rows = [_row(fit) for fit in calibration.fits]
    output.show_table("", "Fit", COLUMNS, rows, fold=("group", "estimate [95%]", "note"))
