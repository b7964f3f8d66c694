"""`mn-deploy deployment export` and `deployment plot`: a live rollout history, read from the controller's Redis
(like `deployment logs`, no controller needed), as a trace file (docs/traces.md) or as the simulator's timeline and
capacity plot.

A KEY names the key's whole retained history; a deployment ID the key's history up to that deployment and the
auto-revert it triggered. `plot --trace FILE` draws an exported (or `sim run --trace`) file without Redis.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from mn_deploy.output import Output
from mn_deploy.redis_reader import reading, redis_option
from mn_deploy.traces import UnknownHistory, read_trace
from mn_deploy.usage import EXIT_USAGE
from mn_deploy_core.trace import TraceError, check_trace
from sim.jsonfile import read_json
from sim.plots import run_figure
from sim.schema import ScenarioError
from sim.traced import result_of_trace

_OUT = click.Path(dir_okay=False, path_type=Path)


@click.command("export")
@click.argument("key_or_id", metavar="KEY|ID")
@click.option("--out", type=_OUT, help="Write the trace to this file and print a summary line (default: stdout).")
@redis_option
def export(key_or_id: str, out: Path | None, redis_url: str) -> None:
    """Write the recorded history of deployment key KEY (or of deployment ID, with the auto-revert it
    triggered) as a trace: manifests, versions, decisions, operator calls and every instance's facts and life,
    times in ms after the first recorded input (docs/traces.md).

    \b
    Exit codes: 0 written, 2 bad usage, an unknown key or id, or an
    unwritable --out, 3 Redis could not be reached.
    """
    printer = Output.detect(False)
    check_writable(printer, out)
    trace = _live_trace(printer, key_or_id, redis_url)
    text = json.dumps(trace, ensure_ascii=False) + "\n"
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as error:
        printer.exit(f"{out}: cannot write: {error.strerror or error}", EXIT_USAGE)
    facts = sum(len(i["facts"]) for i in trace["instances"])
    click.echo(
        f"{out}: {len(trace['deployments'])} deployment(s), {len(trace['instances'])} instance(s), "
        f"{facts} fact(s), {len(trace['actions'])} action(s)"
    )


@click.command("plot")
@click.argument("key_or_id", metavar="KEY|ID", required=False)
@click.option(
    "--trace",
    "trace_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Draw this trace file "
    "(from `deployment export` or `sim run --trace`) instead of reading Redis; KEY|ID is then not needed.",
)
@click.option("--out", type=_OUT, help="The PNG to write (default: <KEY|ID>-timeline.png, or <trace>-timeline.png).")
@redis_option
def plot(key_or_id: str | None, trace_file: Path | None, out: Path | None, redis_url: str) -> None:
    """Draw a live rollout (KEY or deployment ID, read from Redis) or a trace file with the simulator's timeline
    (a row per agent, a bar per instance coloured by version and hatched by role, verdict marks, deployment
    events) above its capacity plot (serving primaries per version).

    \b
    Exit codes: 0 written, 2 bad usage, an unknown key or id, an unreadable
    or malformed trace, or an unwritable --out, 3 Redis could not be reached.
    """
    printer = Output.detect(False)
    if (key_or_id is None) == (trace_file is None):
        printer.exit("name a KEY|ID to read from Redis, or give --trace FILE (not both)", EXIT_USAGE)
    stem = key_or_id if trace_file is None else trace_file.stem
    path = out or Path(f"{stem}-timeline.png")
    check_writable(printer, path)
    trace = _live_trace(printer, key_or_id, redis_url) if key_or_id is not None else _file_trace(printer, trace_file)
    try:
        figure = run_figure(result_of_trace(trace), traced=trace["source"])
    except TraceError as error:  # a part a plot reads that is malformed
        printer.exit(f"{trace_file or key_or_id}: {error.message}", EXIT_USAGE)
    try:
        figure.savefig(path, dpi=100)
    except OSError as error:
        printer.exit(f"{path}: cannot write: {error.strerror or error}", EXIT_USAGE)
    click.echo(f"{path}: {len(trace['instances'])} instance(s) of {len(trace['deployments'])} deployment(s)")


def _live_trace(printer: Output, key_or_id: str, redis_url: str) -> dict[str, Any]:
    with reading(printer, redis_url) as client:
        try:
            trace = read_trace(client, key_or_id)
        except UnknownHistory as error:
            printer.exit(error.message, EXIT_USAGE)
    if trace.get("cut"):
        printer.warning(f"the trace is cut short: the inputs of {', '.join(trace['cut'])} outgrew their cap")
    elif not trace["complete"]:
        printer.warning("the trace is not complete: retention removed the key's first deployments")
    return trace


def _file_trace(printer: Output, path: Path | None) -> dict[str, Any]:
    try:
        return check_trace(read_json(path or ""))
    except (ScenarioError, TraceError) as error:
        printer.exit(f"{path}: {error}", EXIT_USAGE)


def check_writable(printer: Output, path: Path | None) -> None:
    """Refuse before reading anything when the output cannot be written."""
    if path is not None and not os.access(path.parent, os.W_OK):
        printer.exit(f"{path}: cannot write: {path.parent} is not a writable directory", EXIT_USAGE)
