"""Calibration recovers the behaviors a simulation ran with, from the simulation's own trace: the true parameters
lie in the reported intervals and clean data gets its family back; it pools a rollback with the version it
restores and several traces by spec digest; its statistics match published values; and whatever a trace file
holds, it answers with a Calibration or one line naming where the trace is wrong (fuzzed with hypothesis)."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mn_deploy_core.trace import check_trace
from sim import Calibration, CalibrationError, Fit, Simulation, calibrate, load_scenario
from sim.calibrate import MAX_T_MS, MIN_OBSERVATIONS
from sim.distributions import parse_distribution
from sim.fitting import clopper_pearson, exponential_mean_interval, fit_latency
from tests.awkward import JSON_VALUES, nested

SEED = 7
CHECKS = [{"type": "http", "path": "/health"}, {"type": "tcp"}]


def manifest(image: str, nodes: Mapping[str, int], *, checks: bool = True) -> dict[str, Any]:
    """A service manifest of key `k`, every agent placed at once, three restarts half a second apart."""
    services = [{"name": "api", "checks": CHECKS}] if checks else []
    return {
        "job_type": "service",
        "graph_id": "g",
        "deployment": {"key": "k"},
        "nodes": [
            {
                "node_id": node,
                "agent_type": "executor",
                "count": count,
                "config": {"image": image},
                "services": services,
            }
            for node, count in nodes.items()
        ],
        "edges": [],
        "policies": {
            "update": {"max_parallel": 300, "min_healthy_ms": 1000, "healthy_deadline_ms": 60000},
            "restart": {"attempts": 3, "delay_ms": 500},
        },
    }


def traced(behaviors: dict[str, Any], *, nodes: Mapping[str, int] | None = None, seed: int = SEED, **extra: Any) -> Any:
    """The trace of deploying `v1` (300 agents unless `nodes` says otherwise) with these behaviors."""
    scenario = {
        "name": "calibration",
        "seed": seed,
        "until_ms": 3_600_000,
        "manifests": {"v1": manifest("w:1", nodes or {"worker": 300})},
        "behaviors": behaviors,
        "actions": [{"at_ms": 0, "deploy": "v1"}],
        **extra,
    }
    simulation = Simulation(load_scenario(scenario), seed, record=True)
    simulation.run()
    return simulation.trace()


def fits_of(calibration: Calibration, group: str = "k@1") -> dict[str, Fit]:
    return {fit.field: fit for fit in calibration.fits if group in (fit.manifest, fit.agent)}


def within(fit: Fit, truth: Mapping[str, float]) -> None:
    """Every true parameter inside its interval (an open upper end is unbounded)."""
    for name, value in truth.items():
        low, high = fit.intervals[name]
        assert low <= value and (high is None or value <= high), f"{fit.field} {name}={value} not in {[low, high]}"


TRUTH: dict[str, Any] = {
    "start_ms": {"lognormal": {"median": 1500, "sigma": 0.4}},
    "ready_ms": 200,
    "check_ms": {"uniform": [300, 700]},
    "start_failure": 0.1,
    "check_failure": 0.05,
    "crash_after_ms": {"exponential": {"mean": 600_000}},
}


@pytest.fixture(scope="module")
def recovered() -> Calibration:
    return calibrate([traced({"v1": TRUTH})])


def test_calibration_recovers_the_parameters_a_simulation_of_300_agents_ran_with(recovered: Calibration) -> None:
    fits = fits_of(recovered)
    assert {name: fits[name].family for name in TRUTH} == {
        "start_ms": "lognormal",
        "ready_ms": "const",
        "check_ms": "uniform",
        "start_failure": "probability",
        "check_failure": "probability",
        "crash_after_ms": "exponential",
    }
    within(fits["start_ms"], {"median": 1500, "sigma": 0.4})
    assert fits["ready_ms"].parameters == {"value": pytest.approx(200)}
    within(fits["check_ms"], {"low": 300, "high": 700})
    within(fits["start_failure"], {"p": 0.1})
    within(fits["check_failure"], {"p": 0.05})
    within(fits["crash_after_ms"], {"mean": 600_000})
    assert all(fits[name].n >= 300 for name in TRUTH)


def test_the_behaviors_are_a_scenario_behaviors_object_keyed_by_the_traces_manifest_names(
    recovered: Calibration,
) -> None:
    assert list(recovered.behaviors) == ["k@1"]
    scenario = load_scenario(
        {
            "name": "rehearsal",
            "manifests": {"k@1": manifest("w:1", {"worker": 300})},
            "behaviors": json.loads(json.dumps(recovered.behaviors, allow_nan=False)),
            "actions": [{"at_ms": 0, "deploy": "k@1"}],
        }
    )
    behavior = scenario.behaviors.resolve("k@1", "worker-0")
    assert behavior.start_failure == pytest.approx(0.1, abs=0.03)
    assert behavior.crash_after_ms is not None


@pytest.mark.parametrize(
    ("distribution", "family", "truth"),
    [
        ({"lognormal": {"median": 2000, "sigma": 0.6}}, "lognormal", {"median": 2000, "sigma": 0.6}),
        ({"exponential": {"mean": 2000}}, "exponential", {"mean": 2000}),
        ({"normal": {"mean": 3000, "std": 900}}, "normal", {"mean": 3000, "std": 900}),
        ({"uniform": [1000, 4000]}, "uniform", {"low": 1000, "high": 4000}),
        (2500, "const", {"value": 2500}),
    ],
)
def test_clean_data_gets_its_own_family_back(distribution: Any, family: str, truth: dict[str, float]) -> None:
    fit = fits_of(calibrate([traced({"default": {"start_ms": distribution}})]))["start_ms"]
    assert (fit.family, fit.n) == (family, 300)
    if family == "const":
        assert fit.parameters == truth and fit.value == truth["value"]
    else:
        within(fit, truth)
        assert fit.ks_p is not None and fit.ks_p >= 0.05


def test_a_bimodal_latency_fits_no_family_and_keeps_the_values_as_empirical() -> None:
    slow = {f"b-{i}": {"start_ms": {"lognormal": {"median": 8000, "sigma": 0.1}}} for i in range(150)}
    behaviors = {"v1": {"start_ms": {"lognormal": {"median": 1000, "sigma": 0.1}}, "agents": slow}}
    calibration = calibrate([traced(behaviors, nodes={"a": 150, "b": 150})])
    fit = fits_of(calibration)["start_ms"]
    assert fit.family == "empirical" and fit.note.startswith("no family fits")
    values = calibration.behaviors["k@1"]["start_ms"]["empirical"]
    assert len(values) == 300 and values == sorted(values)
    assert sum(v < 3000 for v in values) == 150


def test_a_rollback_pools_with_the_version_it_restores_and_traces_pool_by_spec_digest() -> None:
    scenario = {
        "name": "rollback",
        "seed": SEED,
        "manifests": {"v1": manifest("w:1", {"worker": 10}), "v2": manifest("w:2", {"worker": 10})},
        "behaviors": {"default": {"start_ms": 1000}, "v2": {"start_ms": 3000}},
        "actions": [
            {"at_ms": 0, "deploy": "v1"},
            {"at_ms": 60_000, "deploy": "v2"},
            {"at_ms": 120_000, "rollback": "k", "version": "1"},
        ],
    }
    simulation = Simulation(load_scenario(scenario), SEED, record=True)
    simulation.run()
    trace = simulation.trace()
    assert [v["manifest"] for v in trace["versions"]] == ["k@1", "k@2", "k@3"]
    placed = {d: sum(i["deployment_id"] == d for i in trace["instances"]) for d in ("dep_k_1", "dep_k_2", "dep_k_3")}
    calibration = calibrate([trace])
    assert sorted(calibration.observations) == ["k@1", "k@2"]
    assert calibration.observations["k@1"].instances == placed["dep_k_1"] + placed["dep_k_3"] == 20
    assert calibration.behaviors["k@1"]["start_ms"] == 1000 and calibration.behaviors["k@2"]["start_ms"] == 3000
    renamed = copy.deepcopy(trace)  # another trace naming the same specification otherwise pools under the first name
    for version in renamed["versions"]:
        version["manifest"] = "other@" + version["version"]
    twice = calibrate([trace, renamed])
    assert sorted(twice.observations) == ["k@1", "k@2"]
    assert twice.observations["k@1"].instances == 40


def test_by_agent_fits_each_agent_under_default_agents_pooling_traces() -> None:
    behaviors = {"v1": {"start_ms": 1000, "agents": {"slow": {"start_ms": 5000, "ready_ms": 300}}}}
    traces = [traced(behaviors, nodes={"fast": 1, "slow": 1}, seed=seed) for seed in range(MIN_OBSERVATIONS)]
    calibration = calibrate(traces, by="agent")
    agents = calibration.behaviors["default"]["agents"]
    assert set(calibration.behaviors) == {"default"} and set(agents) == {"fast", "slow"}
    assert (agents["fast"]["start_ms"], agents["fast"]["ready_ms"]) == (1000, 0)
    assert (agents["slow"]["start_ms"], agents["slow"]["ready_ms"]) == (5000, 300)
    assert {fit.agent for fit in calibration.fits} == {"fast", "slow"} and {
        fit.manifest for fit in calibration.fits
    } == {None}


def test_too_few_observations_leave_a_field_unset_and_say_so() -> None:
    calibration = calibrate([traced({"default": {"start_ms": 1000}}, nodes={"worker": MIN_OBSERVATIONS - 1})])
    fits = fits_of(calibration)
    assert fits["start_ms"].family == "unset" and fits["start_ms"].note == "too few values (4 < 5)"
    assert fits["start_failure"].note == "too few trials (4 < 5)"
    assert calibration.behaviors == {}


# Hand-made traces: one instance's facts, to pin down what each fact means.


def handmade(*facts: tuple[float, str] | tuple[float, str, str], copies: int = MIN_OBSERVATIONS) -> dict[str, Any]:
    """A trace of key k version 1 whose `copies` instances each report `facts` ((t_ms, kind[, check]))."""
    rows = [
        {"t_ms": fact[0], "kind": fact[1], **({"check": fact[2]} if len(fact) == 3 else {})}  # type: ignore[misc]
        for fact in facts
    ]
    return {
        "format": 1,
        "source": "live",
        "origin": "2026-01-01T00:00:00Z",
        "complete": True,
        "manifests": {"k@1": {}},
        "versions": [{"key": "k", "version": "1", "manifest": "k@1", "spec_digest": "d1", "deployment_id": "dep_k_1"}],
        "deployments": [{"deployment_id": "dep_k_1", "deployment_key": "k", "events": []}],
        "actions": [],
        "instances": [
            {"instance_id": f"i{n}", "deployment_id": "dep_k_1", "agent_id": "a", "version": "1", "facts": rows}
            for n in range(copies)
        ],
    }


def test_checks_pass_when_the_last_declared_check_passes_and_a_run_that_exits_before_ready_failed_to_start() -> None:
    trace = handmade(
        (0, "placed"),
        (100, "running"),
        (150, "exited"),  # a failed start attempt
        (650, "restarted"),
        (850, "running"),
        (900, "ready"),
        (950, "check_passing", "http"),
        (1000, "check_failing", "tcp"),
        (1300, "check_passing", "tcp"),  # every check passing: 400 ms after ready
        (1400, "check_failing", "http"),
        (1500, "check_passing", "http"),  # passing again is not a second check latency
        (2900, "exited"),  # a crash 2000 ms after ready
    )
    observed = calibrate([trace]).observations["k@1"]
    assert observed.start_ms == [100, 200] * MIN_OBSERVATIONS
    assert observed.ready_ms == [50] * MIN_OBSERVATIONS
    assert observed.check_ms == [400] * MIN_OBSERVATIONS
    assert (observed.starts, observed.start_failures) == (10, 5)
    assert (observed.checked, observed.check_failures) == (5, 0)
    assert (observed.crashes, observed.exposure_ms, observed.at_risk) == (5, 10_000, 5)


def test_an_instance_judged_unhealthy_with_its_checks_never_all_passing_is_a_check_failure_exposed_until_its_stop() -> (
    None
):
    trace = handmade(
        (0, "placed"), (10, "running"), (20, "ready"), (30, "check_passing", "a"), (40, "check_failing", "b")
    )
    for instance in trace["instances"]:
        instance["life"] = {"unhealthy_ms": 1000, "stopped_ms": 1020}
    observed = calibrate([trace]).observations["k@1"]
    assert (observed.checked, observed.check_failures, observed.check_ms) == (5, 5, [])
    assert (observed.crashes, observed.exposure_ms) == (0, 5000)
    fit = fits_of(calibrate([trace]))["crash_after_ms"]
    assert fit.family == "none" and fit.value is None and fit.intervals["mean"][1] is None


def test_checks_that_pass_after_the_verdict_were_slow_not_failing() -> None:
    """An instance judged unhealthy but left running, whose checks pass later, was slow: the simulator draws a
    check failure as checks that never pass."""
    trace = handmade(
        (0, "placed"), (10, "running"), (20, "ready"), (40, "check_failing", "b"), (1500, "check_passing", "b")
    )
    for instance in trace["instances"]:
        instance["life"] = {"unhealthy_ms": 1000, "stopped_ms": None}
    observed = calibrate([trace]).observations["k@1"]
    assert (observed.checked, observed.check_failures, observed.check_ms) == (5, 0, [1480] * 5)


def test_without_a_life_the_verdict_is_the_deployments_unhealthy_event() -> None:
    trace = handmade((0, "placed"), (10, "running"), (20, "ready"), (40, "check_failing", "b"))
    trace["deployments"][0]["events"] = [
        {"type": "deployment_instance_unhealthy", "t_ms": 1000, "instance_id": instance["instance_id"]}
        for instance in trace["instances"]
    ]
    observed = calibrate([trace]).observations["k@1"]
    assert (observed.checked, observed.check_failures) == (5, 5)


UNJUDGED = {
    "lost with its node while its checks were failing": (
        [(0, "placed"), (10, "running"), (20, "ready"), (40, "check_failing", "b"), (500, "failed")],
        {"unhealthy_ms": 500, "stopped_ms": 500},
    ),
    "stopped before its healthy deadline": (
        [(0, "placed"), (10, "running"), (20, "ready"), (40, "check_failing", "b")],
        {"unhealthy_ms": None, "stopped_ms": 520},
    ),
    "still waiting for its checks when the trace ends": (
        [(0, "placed"), (10, "running"), (20, "ready"), (40, "check_failing", "b")],
        None,
    ),
    "judged unhealthy before it was ready": (
        [(0, "placed"), (10, "running"), (40, "check_failing", "b")],
        {"unhealthy_ms": 500, "stopped_ms": 500},
    ),
}


@pytest.mark.parametrize("case", UNJUDGED)
def test_an_instance_whose_checks_had_no_verdict_of_their_own_is_no_check_trial(case: str) -> None:
    """Its checks might have passed had it lived on: counting it a failure would blame the checks for a lost
    node, an operator's stop or a slow start."""
    facts, life = UNJUDGED[case]
    trace = handmade(*facts)
    trace["deployments"][0]["policy"] = {"healthy_deadline_ms": 1000}
    for instance in trace["instances"]:
        instance["placed_ms"], instance["life"] = 0, life
    observed = calibrate([trace]).observations["k@1"]
    assert (observed.checked, observed.check_failures) == (0, 0)


def test_an_instance_stopped_at_its_healthy_deadline_without_a_verdict_of_its_own_is_a_check_failure() -> None:
    """A sibling's verdict at the same ms failed the deployment, which stopped this one before its own verdict:
    its checks had as long and failed as much."""
    trace = handmade((0, "placed"), (10, "running"), (20, "ready"), (40, "check_failing", "b"))
    trace["deployments"][0]["policy"] = {"healthy_deadline_ms": 1000}
    for instance in trace["instances"]:
        instance["placed_ms"], instance["life"] = 0, {"unhealthy_ms": None, "stopped_ms": 1000}
    observed = calibrate([trace]).observations["k@1"]
    assert (observed.checked, observed.check_failures) == (5, 5)


def test_a_run_lost_with_its_node_ends_its_exposure_and_is_no_start_attempt() -> None:
    """A run ends at its `failed` fact: an exit reported after it (a trace may hold one) is no crash, and a start
    it cut short is no attempt, failed or not."""
    lost_ready = handmade((0, "placed"), (10, "running"), (20, "ready"), (520, "failed"), (900, "exited"))
    observed = calibrate([lost_ready]).observations["k@1"]
    assert (observed.crashes, observed.exposure_ms, observed.starts) == (0, 2500, 5)
    lost_starting = handmade((0, "placed"), (10, "running"), (520, "failed"), (900, "exited"))
    observed = calibrate([lost_starting]).observations["k@1"]
    assert (observed.starts, observed.start_failures) == (0, 0)


def test_the_first_start_counts_from_the_controllers_placement_when_the_trace_has_it() -> None:
    trace = handmade((50, "placed"), (300, "running"))
    assert calibrate([trace]).observations["k@1"].start_ms == [250] * MIN_OBSERVATIONS
    for instance in trace["instances"]:
        instance["placed_ms"] = 0  # the worker reported `placed` 50 ms after the controller placed it
    assert calibrate([trace]).observations["k@1"].start_ms == [300] * MIN_OBSERVATIONS


def test_facts_out_of_order_are_read_in_time_order() -> None:
    facts = [(0, "placed"), (100, "running"), (300, "ready"), (700, "check_passing", "c")]
    forward = calibrate([handmade(*facts)])
    backward = calibrate([handmade(*reversed(facts))])
    assert (
        forward.behaviors
        == backward.behaviors
        == {
            "k@1": {"start_ms": 100.0, "ready_ms": 200.0, "check_ms": 400.0, "start_failure": 0.0, "check_failure": 0.0}
        }
    )


# The statistics against published values.


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [(0, 10, 0.0, 0.3085), (1, 10, 0.0025, 0.4450), (5, 10, 0.1871, 0.8129), (10, 10, 0.6915, 1.0)],
)
def test_clopper_pearson_matches_published_exact_intervals(
    successes: int, trials: int, low: float, high: float
) -> None:
    assert clopper_pearson(successes, trials) == (pytest.approx(low, abs=1e-4), pytest.approx(high, abs=1e-4))


def test_the_crash_mean_interval_is_the_exact_poisson_one() -> None:
    # no event in T: the mean exceeds T / -ln(0.025) = T / 3.6889 at 97.5%, with no upper bound
    assert exponential_mean_interval(0, 1000.0) == (pytest.approx(271.08, abs=0.01), None)
    low, high = exponential_mean_interval(10, 10_000.0)  # chi-square(22) 0.975 = 36.781, chi-square(20) 0.025 = 9.591
    assert (low, high) == (pytest.approx(20_000 / 36.781, rel=1e-4), pytest.approx(20_000 / 9.591, rel=1e-4))


def test_values_within_a_millisecond_are_a_constant() -> None:
    fit = fit_latency([200.0, 200.4, 200.9, 200.2, 200.1])
    assert (fit.family, fit.value) == ("const", 200.2)


# Whatever the file holds: a Calibration, or one line naming where.

_PLACES = st.sampled_from(
    [
        ("versions", 0, "key"),
        ("versions", 0, "version"),
        ("versions", 0, "spec_digest"),
        ("versions", 0, "manifest"),
        ("versions", 0),
        ("deployments", 0, "deployment_key"),
        ("deployments", 0, "deployment_id"),
        ("deployments", 0, "policy"),
        ("deployments", 0, "policy", "healthy_deadline_ms"),
        ("deployments", 0, "events"),
        ("deployments", 0, "events", 0),
        ("deployments", 0, "events", 0, "instance_id"),
        ("deployments", 0, "events", 0, "t_ms"),
        ("instances", 0, "deployment_id"),
        ("instances", 0, "version"),
        ("instances", 0, "agent_id"),
        ("instances", 0, "life"),
        ("instances", 0, "life", "stopped_ms"),
        ("instances", 0, "life", "unhealthy_ms"),
        ("instances", 0, "placed_ms"),
        ("instances", 0, "facts", 1, "t_ms"),
        ("instances", 0, "facts", 1, "kind"),
        ("instances", 0, "facts", 3, "check"),
        ("instances", 0, "facts", 2),
        ("instances", 0, "facts"),
        ("instances",),
        ("format",),
    ]
)


def _put(document: dict[str, Any], place: tuple[Any, ...], value: Any) -> None:
    """Set the value at `place`, when an earlier change left a place there to set."""
    target: Any = document
    try:
        for step in place[:-1]:
            target = target[step]
    except (KeyError, IndexError, TypeError):
        return
    last = place[-1]
    if isinstance(target, dict) or (isinstance(target, list) and isinstance(last, int) and last < len(target)):
        target[last] = value


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(_PLACES, JSON_VALUES | st.just(nested(200)) | st.just(1e300)), min_size=1, max_size=3),
    st.sampled_from(["manifest", "agent"]),
    st.randoms(use_true_random=False),
)
def test_fuzz_any_trace_gives_a_calibration_or_one_line(
    changes: list[tuple[tuple[Any, ...], Any]], by: str, shuffle: Any
) -> None:
    document = handmade((0, "placed"), (100, "running"), (300, "ready"), (700, "check_failing", "c"), (900, "exited"))
    document["deployments"][0]["policy"] = {"healthy_deadline_ms": 500}
    document["deployments"][0]["events"] = [
        {"type": "deployment_instance_unhealthy", "t_ms": 500, "instance_id": instance["instance_id"]}
        for instance in document["instances"]
    ]
    for instance in document["instances"]:
        instance["placed_ms"], instance["life"] = 0, {"stopped_ms": 1000, "unhealthy_ms": 500}
    for place, value in changes:
        _put(document, place, value)
    for instance in document["instances"] if isinstance(document.get("instances"), list) else []:
        if isinstance(instance, dict) and isinstance(instance.get("facts"), list):
            shuffle.shuffle(instance["facts"])
    try:
        calibration = calibrate([document], by=by)
    except CalibrationError as error:
        assert error.index == 0 and "\n" not in error.message and error.message
        return
    check_trace(document)
    json.dumps(calibration.to_json(), allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=MAX_T_MS) | st.sampled_from([0.0, 1.0, 1e12]), min_size=1))
def test_fuzz_any_latencies_fit_to_a_distribution_a_scenario_accepts(values: list[float]) -> None:
    fit = fit_latency(values)
    parse_distribution(json.loads(json.dumps(fit.value, allow_nan=False)), "$")
    assert fit.ks_p is None or 0 <= fit.ks_p <= 1
    for name, (low, high) in fit.intervals.items():
        assert low <= fit.parameters[name] and (high is None or fit.parameters[name] <= high)
