"""A deploy's prediction from a recorded history (sim/prediction.py), on histories the simulator records: the
predicted duration lands where a direct simulation of the true behaviors lands, a version whose checks always
failed is predicted to be reverted, and what the prediction had to assume is said."""

from __future__ import annotations

import copy
import json
import statistics
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mn_deploy_core.manifest import load_manifest
from sim import Planned, PredictionError, Simulation, load_scenario, predict, prediction_setup, run_scenario
from sim.measures import measure
from sim.prediction import settle_bound_ms
from tests.awkward import JSON_VALUES, nested, replaced, subtree_paths

with open("examples/bundles/hello/v1.json") as file:
    HELLO = json.load(file)
CHECKS_2S = {
    "start_ms": {"lognormal": {"median": 300, "sigma": 0.2}},
    "ready_ms": {"const": 100},
    "check_ms": {"normal": {"mean": 2000, "std": 200}},
}


def hello(version: int, count: int = 2, **update: Any) -> dict[str, Any]:
    """hello's manifest as version `version` ships it, with `count` agents and policy changes."""
    manifest = copy.deepcopy(HELLO)
    manifest["nodes"][0]["config"]["command"][-1] = f"hello from v{version}"
    manifest["nodes"][0]["count"] = count
    manifest["policies"]["update"].update(update)
    return manifest


def history(manifests: dict[str, Any], behaviors: dict[str, Any], deploys: list[str], every_ms: float = 120_000.0):
    """The trace of a simulated history: each of `deploys` in turn, `every_ms` apart."""
    actions = [{"at_ms": i * every_ms, "deploy": name} for i, name in enumerate(deploys)]
    scenario = {"name": "history", "manifests": manifests, "behaviors": behaviors, "actions": actions}
    simulation = Simulation(load_scenario(scenario), seed=7, record=True)
    simulation.run()
    return simulation.trace()


def test_a_history_whose_checks_take_two_seconds_predicts_the_duration_a_direct_simulation_gives() -> None:
    trace = history({"v1": hello(1, 4), "v2": hello(2, 4)}, {"default": CHECKS_2S}, ["v1", "v2", "v1", "v2"])

    prediction = predict(trace, Planned(hello(3, 4), version="5"), runs=60, workers=2)

    direct = {
        "name": "direct",
        "manifests": {"v2": hello(2, 4), "v3": hello(3, 4)},
        "behaviors": {"default": CHECKS_2S},
        "actions": [{"at_ms": 0, "deploy": "v2"}, {"at_ms": 90_000, "deploy": "v3"}],
    }
    truth = [measure(run_scenario(load_scenario(direct), seed=s))["duration_ms"] for s in range(60)]
    median = prediction.duration_median
    assert median.value is not None and median.low is not None and median.high is not None
    assert abs(median.value - statistics.median(truth)) < 0.1 * statistics.median(truth)
    assert median.low <= median.value <= median.high
    assert prediction.outcomes["successful"].share == 1.0
    assert prediction.setup.notes[0] == "version 5 has no history: assumed to behave as version 4"
    assert prediction.setup.instances_seen == 8  # version 4 runs version 2's spec: both rollouts' instances


def test_a_version_whose_checks_always_failed_is_predicted_reverted() -> None:
    failing = {**CHECKS_2S, "check_failure": 1.0}
    manifests = {"v1": hello(1, 6, max_parallel=6), "v2": hello(2, 6, max_parallel=6)}
    trace = history(manifests, {"default": CHECKS_2S, "v2": failing}, ["v1", "v2"])
    assert [d["status"] for d in trace["deployments"]] == ["successful", "failed", "successful"]  # auto-reverted

    prediction = predict(trace, Planned(hello(2, 6, max_parallel=6), version="4"), runs=20, workers=2)

    assert prediction.outcomes == {"reverted": prediction.outcomes["reverted"]}
    assert prediction.outcomes["reverted"].share == 1.0
    assert not any("no history" in note for note in prediction.setup.notes)  # v2's spec has one: its own
    assert prediction.setup.current == "3"


def test_fields_too_rarely_seen_fall_back_on_the_pooled_versions_and_are_said() -> None:
    trace = history({"v1": hello(1, 3), "v2": hello(2, 3)}, {"default": CHECKS_2S}, ["v1", "v2"])

    setup = prediction_setup(trace, Planned(hello(3, 3), version="3"))

    assert setup.notes[1:] == (
        "hello@2: start_ms, ready_ms, check_ms, start_failure, check_failure, crash_after_ms (none seen: it never "
        "crashes) from all of hello's versions pooled (its own 3 instance(s) show them fewer than 5 times)",
    )
    assert setup.document["behaviors"]["default"]["check_ms"]  # the pooled fit, under no version's own
    assert setup.document["actions"][1]["at_ms"] == setup.deploy_at_ms == 120_000  # 4 progress deadlines of 30 s


def test_the_planned_deploy_comes_after_the_current_version_has_certainly_settled() -> None:
    manifest = load_manifest(hello(1, 4, min_healthy_ms=100, healthy_deadline_ms=500, progress_deadline_ms=1000), None)
    assert settle_bound_ms(manifest) == 5 * 1000


@pytest.mark.parametrize(
    ("deploys", "behaviors", "message"),
    [
        ([], {}, "hello has no recorded history: a prediction needs at least one recorded rollout"),
        (["v1"], {"default": {**CHECKS_2S, "check_failure": 1.0}}, "hello has no successful deployment"),
    ],
)
def test_a_history_that_cannot_say_is_one_line(deploys: list[str], behaviors: dict[str, Any], message: str) -> None:
    trace = history({"v1": hello(1, max_parallel=2), "v2": hello(2)}, behaviors, deploys)
    with pytest.raises(PredictionError) as raised:
        prediction_setup(trace, Planned(hello(2)))
    assert raised.value.message.startswith(message) and "\n" not in raised.value.message


def test_a_key_still_rolling_out_is_not_predicted() -> None:
    scenario = load_scenario(
        {
            "name": "h",
            "manifests": {"v1": hello(1)},
            "behaviors": {"default": CHECKS_2S},
            "actions": [{"at_ms": 0, "deploy": "v1"}],
        }
    )
    simulation = Simulation(scenario, seed=1, until_ms=100.0, record=True)
    simulation.run()
    with pytest.raises(PredictionError, match=r"hello is rolling out \(dep_hello_1\)"):
        prediction_setup(simulation.trace(), Planned(hello(2)))


def test_fields_too_rarely_seen_even_pooled_are_left_unset_and_what_that_means_is_said() -> None:
    trace = history({"v1": hello(1)}, {"default": CHECKS_2S}, ["v1"])

    setup = prediction_setup(trace, Planned(hello(1, strategy="canary", canary=1), version="2"))

    assert setup.notes == (
        "hello@1: left unset, seen fewer than 5 times even pooled (start_ms: it starts at once; ready_ms: it is ready "
        "at once; check_ms: it passes its checks at once; start_failure: it never fails to start; check_failure: it "
        "never fails its checks; crash_after_ms: it never crashes)",
        "the rollout waits for an operator's promote, which no simulated run makes",
    )


FUZZED = history({"v1": hello(1, 3), "v2": hello(2, 3)}, {"default": CHECKS_2S}, ["v1", "v2"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), JSON_VALUES | st.just(nested(200)) | st.just(1e300) | st.just("\ud800\n"))
def test_fuzz_any_history_gives_a_runnable_scenario_or_one_line(data: st.DataObject, value: Any) -> None:
    path = data.draw(st.sampled_from(subtree_paths(FUZZED)[1:]))
    trace = replaced(FUZZED, path, value)
    try:
        setup = prediction_setup(trace, Planned(hello(3, 3), version="3"))
    except PredictionError as error:
        assert error.message and "\n" not in error.message
        return
    load_scenario(setup.document)
