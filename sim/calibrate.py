"""Calibration: scenario behaviors fitted from the raw facts of recorded rollouts (docs/traces.md, "Calibration").

It inverts what `sim.world` does with a behavior's draws. Per run of an instance (its placement, then each
restart): `start_ms` is placed (or restarted) to running; `ready_ms` running to ready; `check_ms` ready to
the moment every check the instance reports is passing; a start attempt *fails* when the run exits before it is
ready; after ready, an exit is a crash, and the time from ready to the crash, or to whatever else ended the run
(a stop, completion, the end of the trace), is exposure to a constant crash hazard; a batch run's running to
completed is `run_ms`. `check_failure` is per instance, as the simulator draws it: one whose checks reported
but were never all passing.

from sim import calibrate
calibration = calibrate([trace], by="manifest")
calibration.behaviors   # a scenario's `behaviors` object
calibration.fits        # what was fitted, from how many observations, how well
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from mn_deploy_core.trace import TraceError, check_trace
from sim.fitting import Interval, clopper_pearson, exponential_mean_interval, fit_latency

BY = ("manifest", "agent")
MIN_OBSERVATIONS = 5
"""Fewer observations than this leave a field unset: a fit of four values says more about luck than the agent."""

MAX_T_MS = 1e12
"""About 31 years: a fact further from the trace's origin is no rollout's, and differences of such times are
no longer exact."""

UNHEALTHY_EVENT = "deployment_instance_unhealthy"
JUDGED = "judged"
"""Not a fact kind: the moment the instance's health was judged, read among its facts at its time."""

LATENCIES = ("start_ms", "ready_ms", "check_ms", "run_ms")
PROBABILITIES = ("start_failure", "check_failure")


@dataclass(slots=True)
class Observations:
    """What the facts of one group (a manifest or an agent) show; `starts` counts start attempts that ended
    (ready or exited), `at_risk` runs past ready."""

    instances: int = 0
    start_ms: list[float] = field(default_factory=list)
    ready_ms: list[float] = field(default_factory=list)
    check_ms: list[float] = field(default_factory=list)
    run_ms: list[float] = field(default_factory=list)
    starts: int = 0
    start_failures: int = 0
    checked: int = 0
    check_failures: int = 0
    crashes: int = 0
    exposure_ms: float = 0.0
    at_risk: int = 0


class CalibrationError(ValueError):
    """Trace number `index` (from 0) cannot be read; `message` is one line naming where."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index
        self.message = message


@dataclass(frozen=True, slots=True)
class Fit:
    """One row of what calibration found. `family` is the fitted family, `probability`, `none` (a crash hazard
    with no crash seen) or `unset` (too few observations, `note` says how many); `n` counts observations
    (values, trials, or crashes); `ks_p` is the goodness of fit of a latency family; `value` is the field as a
    scenario writes it (None when unset)."""

    manifest: str | None
    agent: str | None
    field: str
    family: str
    parameters: dict[str, float]
    n: int
    ks_p: float | None
    intervals: dict[str, Interval]
    value: Any = None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Calibration:
    """`behaviors`: a scenario's `behaviors` object (by manifest: keyed by manifest name; by agent: under
    `default.agents`); `fits`: one row per group and field; `observations`: what they were fitted from."""

    by: str
    behaviors: dict[str, Any]
    fits: list[Fit]
    observations: dict[str, Observations]

    def to_json(self) -> dict[str, Any]:
        return {"by": self.by, "behaviors": self.behaviors, "fits": [fit.to_json() for fit in self.fits]}


def calibrate(traces: Sequence[Mapping[str, Any]], by: str = "manifest") -> Calibration:
    """Fit behaviors per manifest (same spec digest, across traces too, is one manifest, named as the first trace
    naming it does) or per agent. Raises CalibrationError for a trace it cannot read."""
    if by not in BY:
        raise ValueError(f"by must be one of {', '.join(BY)}")
    groups: dict[str, Observations] = {}
    names: dict[str, str] = {}  # spec digest -> manifest name
    for index, trace in enumerate(traces):
        try:
            for group, instance, end_ms, judged_ms in _instances(check_trace(trace), names, by):
                _observe(groups.setdefault(group, Observations()), instance, end_ms, judged_ms)
        except TraceError as error:
            raise CalibrationError(index, error.message) from None
    fits: list[Fit] = []
    behaviors: dict[str, Any] = {}
    for group, observed in groups.items():
        manifest, agent = (group, None) if by == "manifest" else (None, group)
        rows = list(_fits(manifest, agent, observed))
        fields = {row.field: row.value for row in rows if row.value is not None}
        fits.extend(rows)
        if not fields:
            continue
        if by == "manifest":
            behaviors[group] = fields
        else:
            behaviors.setdefault("default", {"agents": {}})["agents"][group] = fields
    return Calibration(by, behaviors, fits, groups)


def _text(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise TraceError(path, "must be a string")
    return value


def _number(value: Any) -> float | None:
    """A time field that may be missing or odd: a number within `MAX_T_MS` of the origin, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not abs(value) <= MAX_T_MS:
        return None
    return float(value)


def _instances(
    trace: Mapping[str, Any], names: dict[str, str], by: str
) -> Iterator[tuple[str, Mapping[str, Any], float, float | None]]:
    """(group, instance, when its observation ends, when its health was judged) for every instance the trace can
    place in a group. It was judged at its unhealthy verdict (its life's, else its deployment's event), else at
    its healthy deadline (placement + the deployment's `healthy_deadline_ms`) if it was still observed then: an
    instance stopped at that very ms, because a sibling's verdict failed the deployment, got no verdict of its own
    but was as unhealthy."""
    manifests: dict[tuple[str, str], str] = {}
    for i, version in enumerate(trace["versions"]):
        key = _text(version.get("key"), f"$.versions[{i}].key")
        number = _text(version.get("version"), f"$.versions[{i}].version")
        digest = _text(version.get("spec_digest"), f"$.versions[{i}].spec_digest")
        name = _text(version.get("manifest"), f"$.versions[{i}].manifest")
        manifests[(key, number)] = names.setdefault(digest, name)
    keys: dict[str, str] = {}
    deadlines: dict[str, float | None] = {}
    for i, deployment in enumerate(trace["deployments"]):
        deployment_id = _text(deployment.get("deployment_id"), f"$.deployments[{i}].deployment_id")
        keys[deployment_id] = _text(deployment.get("deployment_key"), f"$.deployments[{i}].deployment_key")
        policy = deployment.get("policy")
        deadlines[deployment_id] = _number(policy.get("healthy_deadline_ms")) if isinstance(policy, dict) else None
    verdicts = _unhealthy_events(trace["deployments"])
    times = [fact["t_ms"] for instance in trace["instances"] for fact in instance["facts"]]
    trace_end = max(times, default=0.0)
    for i, instance in enumerate(trace["instances"]):
        for j, fact in enumerate(instance["facts"]):
            if abs(fact["t_ms"]) > MAX_T_MS:
                raise TraceError(f"$.instances[{i}].facts[{j}].t_ms", f"must be within {MAX_T_MS:.0e} ms of the origin")
        deployment_id, version = instance.get("deployment_id"), instance.get("version")
        if by == "agent":
            group = instance.get("agent_id")
        elif isinstance(deployment_id, str) and isinstance(version, str):
            group = manifests.get((keys.get(deployment_id, ""), version))
        else:
            group = None
        if not isinstance(group, str):
            continue  # placed before the trace begins: its manifest (or agent) is unknown
        life = instance.get("life")
        if isinstance(life, dict):
            stopped, judged = _number(life.get("stopped_ms")), _number(life.get("unhealthy_ms"))
        else:
            instance_id = instance.get("instance_id")
            stopped, judged = None, verdicts.get(instance_id) if isinstance(instance_id, str) else None
        end_ms = trace_end if stopped is None else stopped
        placed_ms = _number(instance.get("placed_ms"))
        deadline_ms = deadlines.get(deployment_id) if isinstance(deployment_id, str) else None
        if judged is None and placed_ms is not None and deadline_ms is not None and placed_ms + deadline_ms <= end_ms:
            judged = placed_ms + deadline_ms
        yield group, instance, end_ms, judged


def _unhealthy_events(deployments: Sequence[Mapping[str, Any]]) -> dict[str, float | None]:
    """Instance id -> the time of its first unhealthy verdict in the deployments' events."""
    verdicts: dict[str, float | None] = {}
    for deployment in deployments:
        events = deployment.get("events")
        for event in events if isinstance(events, list) else ():
            if isinstance(event, dict) and event.get("type") == UNHEALTHY_EVENT:
                instance_id = event.get("instance_id")
                if isinstance(instance_id, str):
                    verdicts.setdefault(instance_id, _number(event.get("t_ms")))
    return verdicts


def _observe(observed: Observations, instance: Mapping[str, Any], end_ms: float, judged_ms: float | None) -> None:
    """One instance's facts, in time order (the order of equal times kept), run by run. The first start counts
    from the controller's placement (`placed_ms`) when the trace has it: a live worker reports `placed` only once
    the order reached it, and the simulator's `start_ms` covers that delivery too. Its checks are one trial
    when they passed, or when it was judged (`judged_ms`) ready with them never passing (its healthy deadline
    passed on them); an instance lost, failed or stopped before either says nothing of its checks."""
    observed.instances += 1
    placed_ms = _number(instance.get("placed_ms"))
    facts = list(instance["facts"])
    if judged_ms is not None:
        facts.append({"t_ms": judged_ms, "kind": JUDGED})  # last: after the facts of its own ms, as the core judges
    facts.sort(key=lambda fact: fact["t_ms"])
    declared = {str(fact.get("check", "")) for fact in facts if fact["kind"].startswith("check_")}
    start_from = placed_ms
    running: float | None = None
    ready: float | None = None
    checks: dict[str, bool] = {}
    passed = ever_passing = checks_failed = False  # every check passing in this run, in any run; judged on them
    for fact in facts:
        kind, t = fact["kind"], float(fact["t_ms"])
        if kind in ("placed", "restarted"):
            first = kind == "placed" and placed_ms is not None and placed_ms <= t
            start_from, running, ready = placed_ms if first else t, None, None
        elif kind == "running" and running is None:
            if start_from is not None:
                observed.start_ms.append(t - start_from)
            start_from, running, ready, checks, passed = None, t, None, {}, False
        elif kind == "ready" and running is not None and ready is None:
            observed.ready_ms.append(t - running)
            observed.starts += 1
            observed.at_risk += 1
            ready = t
        elif kind in ("check_passing", "check_failing") and ready is not None:
            checks[str(fact.get("check", ""))] = kind == "check_passing"
            if not passed and checks.keys() == declared and all(checks.values()):
                observed.check_ms.append(t - ready)
                passed = ever_passing = True
        elif kind == JUDGED:
            checks_failed = ready is not None and not ever_passing
        elif kind in ("exited", "completed", "failed") and running is not None:
            if ready is None:
                observed.starts += kind != "failed"  # lost with its node: the start attempt never ended
                observed.start_failures += kind == "exited"
            else:
                observed.exposure_ms += t - ready
                observed.crashes += kind == "exited"
            if kind == "completed":
                observed.run_ms.append(t - running)
            running, ready = None, None
    if ready is not None:
        observed.exposure_ms += max(end_ms - ready, 0.0)
    if declared and (ever_passing or checks_failed):
        observed.checked += 1
        observed.check_failures += not ever_passing  # checks that passed after all were only slow


def _too_few(manifest: str | None, agent: str | None, name: str, n: int, what: str) -> Fit:
    note = f"too few {what} ({n} < {MIN_OBSERVATIONS})"
    return Fit(manifest, agent, name, "unset", {}, n, None, {}, note=note)


def _fits(manifest: str | None, agent: str | None, observed: Observations) -> Iterator[Fit]:
    for name in LATENCIES:
        values: list[float] = getattr(observed, name)
        if name == "run_ms" and not values:
            continue  # a service agent never completes: no row rather than a "too few" on every service
        if len(values) < MIN_OBSERVATIONS:
            yield _too_few(manifest, agent, name, len(values), "values")
            continue
        fitted = fit_latency(values)
        note = "" if fitted.family != "empirical" else f"no family fits (best KS p={fitted.ks_p:.3g})"
        n, p = len(values), fitted.ks_p
        yield Fit(manifest, agent, name, fitted.family, fitted.parameters, n, p, fitted.intervals, fitted.value, note)
    counts = {
        "start_failure": (observed.start_failures, observed.starts),
        "check_failure": (observed.check_failures, observed.checked),
    }
    for name, (failures, trials) in counts.items():
        if trials < MIN_OBSERVATIONS:
            yield _too_few(manifest, agent, name, trials, "trials")
            continue
        share = failures / trials
        note = f"{failures} of {trials}"
        interval = {"p": clopper_pearson(failures, trials)}
        yield Fit(manifest, agent, name, "probability", {"p": share}, trials, None, interval, share, note)
    yield _crash(manifest, agent, observed)


def _crash(manifest: str | None, agent: str | None, observed: Observations) -> Fit:
    """The constant-hazard (exponential) crash time: mean = exposure / crashes."""
    if observed.at_risk < MIN_OBSERVATIONS:
        return _too_few(manifest, agent, "crash_after_ms", observed.at_risk, "runs past ready")
    events, exposure = observed.crashes, observed.exposure_ms
    interval = {"mean": exponential_mean_interval(events, exposure)}
    note = f"{events} in {exposure / 1000:.0f} s past ready, {observed.at_risk} runs"
    if events == 0:
        return Fit(manifest, agent, "crash_after_ms", "none", {}, 0, None, interval, note=note)
    mean = exposure / events
    value = {"exponential": {"mean": mean}}
    return Fit(manifest, agent, "crash_after_ms", "exponential", {"mean": mean}, events, None, interval, value, note)
