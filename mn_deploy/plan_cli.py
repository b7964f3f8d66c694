"""`mn-deploy deployment plan`: what a deploy of a bundle would do, before it runs, changing nothing.

The bundle and flags are read as `deployment deploy` reads them (the same options, the same bundle reader, the
controller's own argument decoding and fingerprint), the key's state is read from the controller's Redis by reads
alone (backends/redis_key_state.py), and the core decides the deploy on a copy of it (backends/planning.py). Like
`deployment logs`, it works from any machine that reaches the Redis, with or without a controller running.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
import redis

from backends.live.controller import arguments
from backends.planning import IDEMPOTENT, Plan, PlannedStep, plan_deploy
from backends.protocol.bundles import bundle_fingerprint
from backends.redis_key_state import read_key_state
from mn_deploy.bundle_reader import BundleError, read_bundle
from mn_deploy.deployment_cli import deploy_options, update_policy_json
from mn_deploy.output import Output
from mn_deploy.prediction_view import OUTCOME_COLUMNS, outcome_rows, prediction_fields
from mn_deploy.redis_reader import reading, redis_option
from mn_deploy.sim_cli import run_progress
from mn_deploy.traces import UnknownHistory, read_trace
from mn_deploy.usage import EXIT_USAGE
from mn_deploy_core.errors import DeploymentError
from mn_deploy_core.manifest import load_manifest
from mn_deploy_core.status import Status
from sim.prediction import Planned, Prediction, PredictionError, predict
from sim.sweep import MAX_RUNS

STEP_COLUMNS = ("step", "role", "batch", "agents", "then")
_THEN = {"promote": "wait for promote", "pause": "pause {pause_ms} ms", "at once": "next step"}


@click.command(name="plan")
@deploy_options
@redis_option
@click.option(
    "--predict",
    "runs",
    type=click.IntRange(1, MAX_RUNS),
    metavar="N",
    help="Also simulate the deploy N times with behaviors calibrated from the key's recorded history, and print "
    "the predicted duration (median, p90), outcome shares and min serving, with 95% intervals.",
)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="The predicted runs' seed.")
@click.option("--workers", type=click.IntRange(min=1), help="Processes running the predicted runs (default: cores).")
@click.option("--json", "as_json", is_flag=True, help="Print the plan (and its `prediction`) as one JSON document.")
def plan(
    bundle: Path,
    key: str,
    redis_url: str,
    runs: int | None,
    seed: int,
    workers: int | None,
    as_json: bool,
    **policy: Any,
) -> None:
    """What `deployment deploy BUNDLE` with the same flags would do now, without doing it.

    \b
    Prints the route (initial, noop, rerun, rolling, canary, progressive,
    blue-green, or idempotent: the same version is already rolling out), the
    deployment and version it would create, the deployment it would cancel,
    the changed agents and canaries, the placements made at once, the batch
    order (each step's agents, at most max_parallel in flight), and the policy
    in force after the flags. The core decides it, on a copy of the key's
    state read from the controller's Redis; nothing is written.

    \b
    With --predict N, the key's recorded history (as `deployment export`
    reads it) calibrates the behaviors of its current version, and N
    simulations deploy that version, then this bundle once it settled. A
    version never run before is assumed to behave as the current one; the
    output says so, and says which fields were too rarely seen to fit.

    \b
    Exit codes: 0 planned; 2 refused (bad usage or bundle, a manifest or
    policy the deploy would refuse: the core's message; a prediction for a
    key without a recorded, settled history); 3 Redis could not answer.
    """
    out = Output.detect(as_json)
    try:
        source = read_bundle(bundle)
        manifest = arguments.manifest(source.manifest_json)
        overrides = arguments.update_policy(update_policy_json(policy))
        fingerprint = bundle_fingerprint(source.payloads) if source.payloads else None
        chosen_key = arguments.optional(key)
        target_key = load_manifest(manifest, overrides, chosen_key, fingerprint).key
    except (BundleError, DeploymentError) as error:
        out.exit(error.message, EXIT_USAGE)
    with reading(out, redis_url) as client:
        state, skipped = read_key_state(client, target_key)
        history = _history(out, client, target_key) if runs else None
    for line in skipped:
        out.warning(f"left out of the plan: {line}")
    try:
        decided = plan_deploy(state, manifest, overrides, chosen_key, fingerprint, now=time.time() * 1000.0)
    except DeploymentError as error:
        out.exit(error.message, EXIT_USAGE)
    predicted = None
    if history is not None and runs:
        planned = Planned(manifest, overrides, chosen_key, fingerprint, decided.record.target_version)
        predicted = _predict(out, history, planned, runs, seed, workers)
    _show(out, decided, bundle, predicted)


def _history(out: Output, client: redis.Redis, key: str) -> dict[str, Any]:
    """The key's recorded history, for a prediction; a key without one cannot be predicted (exit 2)."""
    try:
        trace = read_trace(client, key)
    except UnknownHistory:
        out.exit(f"{key} has no recorded history: a prediction needs at least one recorded rollout", EXIT_USAGE)
    if not trace["complete"]:
        out.warning(f"{key}'s recorded history is not complete: calibrated from what is left of it")
    return trace


def _predict(
    out: Output, trace: dict[str, Any], planned: Planned, runs: int, seed: int, workers: int | None
) -> Prediction:
    try:
        with run_progress(runs) as progress:
            return predict(trace, planned, runs=runs, seed=seed, workers=workers, progress=progress)
    except (PredictionError, DeploymentError) as error:
        out.exit(error.message, EXIT_USAGE)


def _show(out: Output, decided: Plan, bundle: Path, predicted: Prediction | None) -> None:
    shown = decided.to_json()
    if predicted is not None:
        shown["prediction"] = predicted.to_json()
    out.show_fields(json.dumps(shown), "Plan", _fields(decided, bundle))
    if out.as_json:
        return
    steps = decided.steps
    rows = [row for number, step in enumerate(steps, 1) for row in _step_rows(number, step, number == len(steps))]
    if rows:
        out.show_table("", "Step", STEP_COLUMNS, rows)
    for line in decided.repairs:
        out.warning(f"a controller taking over would first repair: {line}")
    if predicted is not None:
        out.show_fields("", "Prediction", prediction_fields(predicted))
        out.show_table("", "Outcome", OUTCOME_COLUMNS, outcome_rows(predicted.outcomes))


def _fields(decided: Plan, bundle: Path) -> list[tuple[str, str]]:
    record = decided.record
    if decided.route == IDEMPOTENT:
        deployment = f"{record.deployment_id} (already rolling out this version: nothing new is created)"
    else:
        deployment = f"{record.deployment_id} (new)"
    placed = ", ".join(f"{p.agent_id} ({p.role})" for p in decided.placed)
    return [
        ("Bundle", str(bundle)),
        ("Key", record.deployment_key),
        ("Route", _route(decided)),
        ("Deployment", deployment),
        ("Version", record.target_version or record.current_version or "-"),
        ("Cancels", decided.cancels or "-"),
        ("Changed agents", _agents(record.changed_agent_ids)),
        ("Canaries", _agents(record.canary_agent_ids)),
        ("Placed at once", placed or "-"),
        ("Policy", _policy(record.policy)),
    ]


def _route(decided: Plan) -> str:
    """The route, with how it places: agent level (in place, changed agents only) or a whole new job."""
    how = {"agent_level": "agent level", "blue_green": "a whole new job beside the old one"}.get(decided.record.mode)
    if decided.route == IDEMPOTENT or how is None:
        return decided.route
    return f"{decided.route} ({how})"


def _agents(agents: list[str] | tuple[str, ...]) -> str:
    return f"{', '.join(agents)} ({len(agents)})" if agents else "-"


def _policy(policy: Mapping[str, Any]) -> str:
    return ", ".join(f"{name} {json.dumps(value)}" for name, value in policy.items())


def _step_rows(number: int, step: PlannedStep, last: bool) -> list[list[str]]:
    """One row a batch; a step's last row says how it goes on (the last step's end is the deployment's success)."""
    batches = step.batches or ((),)  # a progressive step whose share the ones before already reached
    after = _THEN[step.then].format(pause_ms=step.pause_ms)
    ends = Status.SUCCESSFUL.value if last and step.then == "at once" else after
    rows = []
    for index, batch in enumerate(batches, 1):
        then = ends if index == len(batches) else "-"
        rows.append([str(number), step.role, f"{index}/{len(batches)}", ", ".join(batch) or "-", then])
    return rows
