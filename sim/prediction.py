"""A deploy's prediction (docs/traces.md, "Planning a deploy"): how long it will take and how likely it is to
succeed, from N simulations with behaviors calibrated from the key's recorded history.

The simulation is a scenario made from the trace: the key's current version (its manifest as the trace names it,
`<key>@<version>`, with its bundle fingerprint) is deployed at 0, so a fresh key reaches the state it has now, and
the planned manifest (with the deploy's overrides, key and fingerprint) is deployed once that has certainly
settled: after every agent of the current version had a whole progress deadline to turn healthy (`settle_bound_ms`).
Both versions' behaviors are calibrated from the trace (`sim.calibrate`); a planned version whose spec the history
never ran has none of its own and is given the current version's, which the prediction says. The runs go through
the sweep machinery (one point, `runs` seeds), and the deployment under test is the planned one (`sim.measures`).

from sim import Planned, predict
prediction = predict(trace, Planned(manifest, version="3"), runs=100, workers=2)
prediction.duration_median, prediction.outcomes["successful"], prediction.notes
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import asdict, dataclass, field
from typing import Any

from mn_deploy_core.errors import InvalidManifestError
from mn_deploy_core.manifest import Manifest, load_manifest
from mn_deploy_core.policy import display_value
from mn_deploy_core.status import ACTIVE, Status
from mn_deploy_core.trace import TraceError, check_trace, manifest_name
from sim.calibrate import MIN_OBSERVATIONS, Calibration, CalibrationError, calibrate
from sim.measures import OUTCOME
from sim.quantiles import Quantile, quantile_interval
from sim.rows import ERROR, Row
from sim.scenario import load_scenario
from sim.schema import ScenarioError
from sim.stats import CONFIDENCE, Estimate, Share, mean_interval, wilson_interval
from sim.sweep import Point, Sweep, run_sweep

METRICS = ("duration_ms", "min_serving")
UNSET_MEANS = {
    "start_ms": "starts at once",
    "ready_ms": "is ready at once",
    "check_ms": "passes its checks at once",
    "run_ms": "runs until stopped",
    "start_failure": "never fails to start",
    "check_failure": "never fails its checks",
    "crash_after_ms": "never crashes",
}
"""What a behavior field left unset does in the simulator (sim/behavior.py's defaults), for the warnings."""


class PredictionError(ValueError):
    """A deploy that cannot be predicted from this history; `message` is one line, whatever a trace's values quoted
    in it hold (non-printable characters escaped)."""

    def __init__(self, message: str) -> None:
        shown = display_value(message)
        super().__init__(shown)
        self.message = shown


@dataclass(frozen=True, slots=True)
class Planned:
    """The deploy to predict, as `deployment deploy` would send it: the manifest, the policy overrides, the key
    chosen, the bundle's fingerprint, and the version the plan says it would create."""

    manifest: Mapping[str, Any]
    overrides: Mapping[str, Any] | None = None
    key: str | None = None
    bundle: str | None = None
    version: str | None = None


@dataclass(frozen=True, slots=True)
class Setup:
    """The scenario a prediction runs and what it had to assume: `notes` are said to the user."""

    key: str
    current: str
    version: str
    document: dict[str, Any]
    deploy_at_ms: float
    instances_seen: int
    notes: tuple[str, ...]


@dataclass(frozen=True)
class Prediction:
    """N simulated runs of a deploy: the planned deployment's duration (median, p90), outcome shares and min
    serving, each with a 95% interval (docs/traces.md says which)."""

    setup: Setup
    runs: int
    seed: int
    errors: int
    duration_median: Quantile
    duration_p90: Quantile
    outcomes: dict[str, Share]
    min_serving: Estimate
    lowest_serving: int | None
    first_error: str | None = None
    rows: list[Row] = field(default_factory=list, repr=False)

    @property
    def durations_ms(self) -> list[float]:
        """Each run's duration of the planned deployment (runs that ended it)."""
        return [row["duration_ms"] for row in self.rows if row["duration_ms"] is not None]

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.setup.key,
            "version": self.setup.version,
            "current_version": self.setup.current,
            "runs": self.runs,
            "seed": self.seed,
            "errors": self.errors,
            "first_error": self.first_error,
            "instances_seen": self.setup.instances_seen,
            "deploy_at_ms": self.setup.deploy_at_ms,
            "notes": list(self.setup.notes),
            "confidence": CONFIDENCE,
            "duration_ms": {
                "median": asdict(self.duration_median),
                "p90": asdict(self.duration_p90),
                "range": [min(durations), max(durations)] if (durations := self.durations_ms) else None,
            },
            "outcomes": {name: asdict(share) for name, share in self.outcomes.items()},
            "min_serving": {**asdict(self.min_serving), "lowest": self.lowest_serving},
        }


def settle_bound_ms(manifest: Manifest) -> float:
    """A time by which a deployment of `manifest` has certainly ended: every agent turning healthy moves its progress
    deadline on, so it ends at most one deadline after each agent (and one more), plus every step's pause. Without a
    progress deadline, an instance's healthy deadline over all its restart attempts stands for it."""
    policy = manifest.policy
    step = policy.progress_deadline_ms or policy.healthy_deadline_ms * (manifest.restart.attempts + 1)
    pauses = sum(s.pause_ms or 0 for s in policy.steps)
    return float((len(manifest.agents) + 1) * step + pauses)


def prediction_setup(trace: Mapping[str, Any], deploy: Planned) -> Setup:
    """The scenario predicting `deploy` to the key whose history `trace` holds. Raises PredictionError when the
    history cannot say, and DeploymentError for a manifest the deploy would refuse."""
    manifest, overrides, bundle, version = deploy.manifest, deploy.overrides, deploy.bundle, deploy.version
    planned = load_manifest(manifest, overrides, deploy.key, bundle)
    target = planned.key
    try:
        check_trace(trace)
        current, current_row = _current_version(trace, target)
        calibration = calibrate([trace])
    except (TraceError, CalibrationError) as error:
        raise PredictionError(f"the history cannot be read: {error.message}") from None
    groups: dict[str, str] = {}  # spec digest -> the group calibration named it by (the first version with it)
    for row in trace["versions"]:
        groups.setdefault(row["spec_digest"], row["manifest"])
    current_group = groups[current_row["spec_digest"]]
    if not _started(calibration, current_group):
        raise PredictionError(
            f"no start of {target} version {current}'s instances was recorded (its rollouts predate recording?): "
            "nothing to calibrate from"
        )
    current_name = manifest_name(target, current)
    planned_name = manifest_name(target, version or "planned")
    if planned_name == current_name:
        planned_name = manifest_name(target, "planned")
    planned_group = groups.get(planned.spec_digest)
    notes = []
    if planned_group is None or not _started(calibration, planned_group):
        planned_group = current_group
        notes.append(f"version {version or '(planned)'} has no history: assumed to behave as version {current}")
    used = dict.fromkeys((current_group, planned_group))
    instances = sum(calibration.observations[g].instances for g in used)
    pooled = _pooled(trace, target)
    pooled_fields = pooled.behaviors.get(next(iter(pooled.observations)), {})
    notes += _fallback_notes(calibration, pooled, list(used), target)
    if _waits_for_promote(planned):
        notes.append("the rollout waits for an operator's promote, which no simulated run makes")
    recorded = trace["manifests"].get(current_row["manifest"])
    try:
        deploy_at = settle_bound_ms(load_manifest(recorded, None, target, current_row.get("bundle_fingerprint")))
    except InvalidManifestError as error:
        raise PredictionError(f"the history's manifest of {target} version {current} is refused: {error}") from None
    behaviors = calibration.behaviors
    options: dict[str, Any] = {"key": target}
    if overrides:
        options["overrides"] = dict(overrides)
    document = {
        "name": f"prediction of {target} version {version or '(planned)'}",
        "description": f"{current_name} deployed at 0, then {planned_name} once it settled",
        "until_ms": deploy_at + 2 * settle_bound_ms(planned),
        "manifests": {current_name: recorded, planned_name: dict(manifest)},
        "behaviors": {
            **({"default": pooled_fields} if pooled_fields else {}),
            **{
                name: behaviors[group]
                for name, group in ((current_name, current_group), (planned_name, planned_group))
                if group in behaviors
            },
        },
        "actions": [
            _deploy(0.0, current_name, {"key": target}, current_row.get("bundle_fingerprint")),
            _deploy(deploy_at, planned_name, options, bundle),
        ],
    }
    try:
        load_scenario(document)
    except ScenarioError as error:  # a recorded manifest or fingerprint this core refuses
        raise PredictionError(f"the history cannot be simulated: {error}") from None
    return Setup(target, current, version or "(planned)", document, deploy_at, instances, tuple(notes))


def _current_version(trace: Mapping[str, Any], key: str) -> tuple[str, Mapping[str, Any]]:
    """The key's current version (its last successful deployment's) and the trace's row of it; PredictionError when
    the key has no settled history."""
    deployments = [d for d in trace["deployments"] if d.get("deployment_key") == key]
    if not deployments:
        raise PredictionError(f"{key} has no recorded history: a prediction needs at least one recorded rollout")
    statuses = [(d, status if isinstance(status := d.get("status"), str) else "") for d in deployments]
    active = [d.get("deployment_id") for d, status in statuses if status in ACTIVE]
    if active:
        raise PredictionError(f"{key} is rolling out ({active[-1]}): predict from a settled key, once it ends")
    settled = [d for d, status in statuses if status == Status.SUCCESSFUL]
    if not settled:
        raise PredictionError(f"{key} has no successful deployment: there is no current version to deploy over")
    current = str(settled[-1]["target_version"])
    row = next((v for v in trace["versions"] if (v.get("key"), v.get("version")) == (key, current)), None)
    if row is None:
        raise PredictionError(f"the trace does not hold {key}'s current version {current}")
    return current, row


def _fallback_notes(calibration: Calibration, pooled: Calibration, groups: list[str], key: str) -> list[str]:
    """Per version simulated, one line naming the fields its own instances showed too rarely to fit that the key's
    versions pooled could fit, and one naming those left unset even so, with what an unset field does."""
    fitted = pooled.behaviors.get(next(iter(pooled.observations)), {})
    pooled_fits = {fit.field: fit for fit in pooled.fits}
    notes = []
    for group in groups:
        unset = [fit.field for fit in calibration.fits if fit.manifest == group and fit.family == "unset"]
        borrowed = [f for f in unset if f in pooled_fits and pooled_fits[f].family != "unset"]
        left = [f for f in unset if f not in borrowed]
        seen = calibration.observations[group].instances
        if borrowed:
            shown = ", ".join(f if f in fitted else f"{f} (none seen: it {UNSET_MEANS[f]})" for f in borrowed)
            notes.append(
                f"{group}: {shown} from all of {key}'s versions pooled "
                f"(its own {seen} instance(s) show them fewer than {MIN_OBSERVATIONS} times)"
            )
        if left:
            means = "; ".join(f"{f}: it {UNSET_MEANS[f]}" for f in left)
            notes.append(f"{group}: left unset, seen fewer than {MIN_OBSERVATIONS} times even pooled ({means})")
    return notes


def _started(calibration: Calibration, group: str) -> bool:
    """Whether any start of the group's instances was recorded (rollouts from before recording have no facts)."""
    seen = calibration.observations.get(group)
    return seen is not None and (seen.starts > 0 or bool(seen.start_ms))


def _pooled(trace: Mapping[str, Any], key: str) -> Calibration:
    """Calibration of every version of `key` as one manifest: what a field too rarely seen in one version falls back
    on (a scenario's `default` behavior, under each manifest's own)."""
    versions = [{**row, "spec_digest": "(every version)"} for row in trace["versions"] if row["key"] == key]
    return calibrate([{**trace, "versions": versions}])


def _deploy(at_ms: float, name: str, options: Mapping[str, Any], bundle: str | None) -> dict[str, Any]:
    return {"at_ms": at_ms, "deploy": name, **options, **({"bundle": bundle} if bundle else {})}


def _waits_for_promote(manifest: Manifest) -> bool:
    policy = manifest.policy
    manual_steps = any(s.pause_ms is None for s in policy.steps)
    return not policy.auto_promote and (policy.strategy == "canary" or manual_steps)


def predict(
    trace: Mapping[str, Any],
    deploy: Planned,
    *,
    runs: int,
    seed: int = 0,
    executor: Executor | None = None,
    workers: int | None = None,
    progress: Callable[[Row], None] | None = None,
) -> Prediction:
    """Simulate `deploy` `runs` times (see `prediction_setup`) and summarize the planned deployment's measures.
    Raises PredictionError, or DeploymentError for a manifest the deploy would refuse."""
    setup = prediction_setup(trace, deploy)
    sweep = Sweep(
        name="prediction",
        description=setup.document["description"],
        scenario_file="(a prediction)",
        scenario=setup.document,
        runs=runs,
        seed=seed,
        grid={},
        metrics=METRICS,
        points=(Point(0, {}),),
    )
    result = run_sweep(sweep, executor=executor, workers=workers, progress=progress)
    return summarize_prediction(setup, result.rows, seed)


def summarize_prediction(setup: Setup, rows: Sequence[Row], seed: int) -> Prediction:
    """The prediction's figures from its runs' rows."""
    durations = [row["duration_ms"] for row in rows if row["duration_ms"] is not None]
    serving = [row["min_serving"] for row in rows if row["min_serving"] is not None]
    counts: dict[str, int] = {}
    for row in rows:
        counts[row[OUTCOME]] = counts.get(row[OUTCOME], 0) + 1
    errors = [row[ERROR] for row in rows if row[OUTCOME] == ERROR]
    return Prediction(
        setup=setup,
        runs=len(rows),
        seed=seed,
        errors=len(errors),
        duration_median=quantile_interval(durations, 0.5),
        duration_p90=quantile_interval(durations, 0.9),
        outcomes={name: wilson_interval(count, len(rows)) for name, count in sorted(counts.items())},
        min_serving=mean_interval(serving),
        lowest_serving=min(serving, default=None),
        first_error=errors[0] if errors else None,
        rows=list(rows),
    )
