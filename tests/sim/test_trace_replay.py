"""Replay (docs/traces.md, "Replay"): a recorded rollout re-run in the simulator decides the same, at the same
times; a trace whose inputs were changed names the first decision that came out otherwise; a malformed trace is
one TraceError, never a traceback."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mn_deploy_core.trace import TraceError
from sim import Simulation, read_scenario, replay_trace, result_of_trace
from tests.awkward import awkward_values, replaced, subtree_paths
from tests.sim.conftest import EXAMPLES

Trace = dict[str, Any]
ROLLING = EXAMPLES / "rolling-success.json"


def recorded(path: Path, seed: int) -> Trace:
    """A simulated run's trace, as written to a file and read back."""
    simulation = Simulation(read_scenario(path), seed, record=True)
    simulation.run()
    return json.loads(json.dumps(simulation.trace()))


def decision_count(trace: Trace) -> int:
    return sum(len(d["events"]) for d in trace["deployments"])


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.stem)
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_every_example_replays_to_identical_decisions_with_no_skew(path: Path, seed: int) -> None:
    trace = recorded(path, seed)
    parity = replay_trace(trace)
    assert parity.divergence is None, f"seed {seed}: {parity.divergence}"
    assert parity.identical
    assert parity.compared == decision_count(trace)
    assert parity.max_skew_ms == 0.0
    assert parity.warnings == ()


def live_shaped(trace: Trace, renumber: int, origin_ms: float) -> Trace:
    """The trace as a live controller would write it: other deployment (and so job and instance) numbers, every
    time on a clock that starts elsewhere, source live."""
    text = re.sub(
        r"\b(dep|job)_([A-Za-z0-9.-]+)_(\d+)\b", lambda m: f"{m[1]}_{m[2]}_{int(m[3]) + renumber}", json.dumps(trace)
    )
    shifted = json.loads(text)
    shifted["source"], shifted["origin"] = "live", "2026-12-01T00:00:00.000Z"

    def shift(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: v + origin_ms
                if k.endswith("_ms") and isinstance(v, float | int) and k != "max_parallel"
                else shift(v)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [shift(item) for item in value]
        return value

    for name in ("actions", "instances", "deployments"):
        shifted[name] = shift(shifted[name])
    return shifted


@pytest.mark.parametrize(
    "path", [ROLLING, EXAMPLES / "canary-manual-promote.json", EXAMPLES / "manual-rollback.json"], ids=lambda p: p.stem
)
def test_a_live_shaped_trace_replays_identically_despite_other_ids_and_clock(path: Path) -> None:
    original = recorded(path, 3)
    trace = live_shaped(original, renumber=6, origin_ms=12_345.5)
    assert "dep_agent-api_7" in json.dumps(trace) and 'dep_agent-api_1"' not in json.dumps(trace)
    parity = replay_trace(trace)
    assert parity.divergence is None, parity.divergence
    assert parity.compared == decision_count(original)
    assert parity.max_skew_ms < 1e-6  # only the rounding of the shifted clock


def instance(trace: Trace, deployment: int, position: int) -> dict[str, Any]:
    """The `position`th instance placed by the `deployment`th deployment (1-based, as in ids)."""
    deployment_id = trace["deployments"][deployment - 1]["deployment_id"]
    return [i for i in trace["instances"] if i["deployment_id"] == deployment_id][position]


def delay_checks(row: dict[str, Any], by_ms: float) -> None:
    for fact in row["facts"]:
        if fact["kind"] == "check_passing":
            fact["t_ms"] += by_ms


def test_a_check_passing_late_enough_to_miss_the_healthy_deadline_is_the_first_divergence() -> None:
    """The recorded verdict "healthy" of that instance is where the replay first decides otherwise (it goes on
    with another instance's verdict there, and finds this one unhealthy later)."""
    trace = recorded(ROLLING, 0)
    late = instance(trace, 2, 0)
    delay_checks(late, 120_000.0)  # the healthy deadline is 60 s after placement
    events = trace["deployments"][1]["events"]
    verdict = next(
        i
        for i, e in enumerate(events)
        if e["type"] == "deployment_instance_healthy" and e["instance_id"] == late["instance_id"]
    )
    parity = replay_trace(trace)
    divergence = parity.divergence
    assert not parity.identical and divergence is not None
    assert divergence.deployment == late["deployment_id"]
    assert divergence.index == verdict
    assert divergence.t_ms == events[verdict]["t_ms"]
    assert divergence.reason == "the replay decided otherwise"
    assert divergence.recorded == {k: v for k, v in events[verdict].items() if k not in ("t_ms", "timestamp")}
    assert divergence.replayed is not None and divergence.replayed["instance_id"] != late["instance_id"]
    unhealthy = [e for e in parity.result.events if e["type"] == "deployment_instance_unhealthy"]
    assert unhealthy[0]["instance_id"] == late["instance_id"]
    assert unhealthy[0]["t_ms"] == pytest.approx(late["placed_ms"] + 60_000.0)


def test_a_fact_a_little_late_keeps_the_decisions_and_shows_as_skew() -> None:
    """The last instance's check passes 2.5 s later: the same verdicts, the last ones 2.5 s later."""
    trace = recorded(ROLLING, 0)
    last = trace["instances"][-1]
    delay_checks(last, 2_500.0)
    parity = replay_trace(trace)
    assert parity.identical, parity.divergence
    assert parity.max_skew_ms == pytest.approx(2_500.0)


def test_a_placement_the_trace_has_no_instance_for_is_a_divergence() -> None:
    trace = recorded(ROLLING, 0)
    gone = instance(trace, 2, 1)
    trace["instances"].remove(gone)
    parity = replay_trace(trace)
    assert parity.divergence is not None
    assert parity.divergence.reason == f"the replay placed {gone['instance_id']}, which the trace has no instance for"
    assert parity.divergence.t_ms == gone["placed_ms"]


def test_a_recorded_call_the_replay_refuses_is_a_divergence() -> None:
    trace = recorded(EXAMPLES / "canary-manual-promote.json", 0)
    promote = next(a for a in trace["actions"] if "promote" in a)
    promote["at_ms"] = 60_000.0  # before the canaries are healthy: the rollout is not waiting yet
    parity = replay_trace(trace)
    assert parity.divergence is not None
    assert parity.divergence.t_ms == 60_000.0
    assert parity.divergence.reason.startswith("the replay refused a recorded call: deployment is running")


def test_an_incomplete_trace_replays_with_a_warning() -> None:
    trace = recorded(ROLLING, 0)
    trace["complete"] = False
    parity = replay_trace(trace)
    assert parity.identical
    assert len(parity.warnings) == 1 and "not complete" in parity.warnings[0]


# ---- malformed traces ------------------------------------------------------------------------------


def small_trace() -> Trace:
    """A short rollout (two versions of three agents), so that each fuzzed replay is cheap."""
    scenario = json.loads(ROLLING.read_text())
    for manifest in scenario["manifests"].values():
        manifest["nodes"][0]["count"] = 3
    path = Path(__file__).parent / "_small_rolling.json"
    try:
        path.write_text(json.dumps(scenario))
        return recorded(path, 0)
    finally:
        path.unlink()


BASE = small_trace()


PATHS = [path for path in subtree_paths(BASE)[1:] if path[:1] != ("manifests",) or len(path) <= 2]
"""Every subtree of the trace but those inside a manifest: a manifest's own checks are the core's, fuzzed with the
loaders, and a fuzzed count would only make the replay large."""


def replays_or_names_a_path(trace: Any) -> None:
    try:
        replay_trace(trace)
    except TraceError as error:
        assert "\n" not in error.message
        assert error.message.startswith("$")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(PATHS), value=awkward_values)
def test_fuzz_any_subtree_replaced_replays_or_is_one_line(path: tuple[Any, ...], value: Any) -> None:
    replays_or_names_a_path(replaced(BASE, path, value))


@settings(max_examples=100, deadline=None)
@given(value=awkward_values)
def test_fuzz_arbitrary_json_is_one_line(value: Any) -> None:
    replays_or_names_a_path(value)


def test_a_deploy_naming_no_manifest_names_its_path() -> None:
    trace = copy.deepcopy(BASE)
    trace["actions"][1]["deploy"] = "agent-api@9"
    with pytest.raises(TraceError, match=r'^\$\.actions\[1\]\.deploy: names no manifest of the trace: "agent-api@9"$'):
        replay_trace(trace)


def test_a_call_the_controller_refused_is_not_in_the_trace() -> None:
    """The scenario promotes too early once (refused) and then in time: only the accepted promote was an input."""
    trace = recorded(EXAMPLES / "canary-manual-promote.json", 0)
    promotes = [a for a in trace["actions"] if "promote" in a]
    assert [a["at_ms"] for a in promotes] == [120_000.0]


LIVE = Path(__file__).parent / "traces" / "live-hello-revert.json"
"""Exported from a real dev stack (the rollout of tests/e2e/test_export.py: hello v1, then v2-broken failing its
checks and auto-reverted), kept as written."""


def test_a_trace_exported_from_a_live_stack_replays_identically() -> None:
    trace = json.loads(LIVE.read_text())
    assert trace["source"] == "live" and [d["status"] for d in trace["deployments"]] == [
        "successful",
        "failed",
        "successful",
    ]
    parity = replay_trace(trace)
    assert parity.divergence is None, parity.divergence
    assert parity.compared == decision_count(trace)
    assert parity.max_skew_ms < 1.0


def test_a_deployment_the_trace_does_not_have_is_a_divergence() -> None:
    """The auto-revert's deployment left out of the trace: the replay creates it all the same."""
    trace = recorded(EXAMPLES / "rolling-bad-version-auto-revert.json", 0)
    revert = trace["deployments"].pop()
    parity = replay_trace(trace)
    assert parity.divergence is not None
    assert parity.divergence.reason == "the replay created a deployment of agent-api the trace does not have"
    assert parity.divergence.t_ms == revert["events"][0]["t_ms"]
    assert parity.divergence.replayed is not None
    assert parity.divergence.replayed["type"] == revert["events"][0]["type"]


def test_a_trace_cut_mid_rollout_compares_only_what_it_could_record() -> None:
    """A run stopped at 70 s, mid-rollout: the replay's decisions after the trace's last moment are not compared."""
    simulation = Simulation(read_scenario(ROLLING), 0, until_ms=70_000.0, record=True)
    simulation.run()
    trace = json.loads(json.dumps(simulation.trace()))
    assert trace["deployments"][-1]["status"] == "running"
    parity = replay_trace(trace)
    assert parity.divergence is None, parity.divergence
    assert parity.compared == decision_count(trace)


@pytest.mark.parametrize("source", ["sim", "live"])
def test_the_replay_names_each_instance_as_the_trace_plot_does(source: str) -> None:
    """A revert to version 1 runs version 1's spec: the replay's result calls it by version 1's manifest, as the
    trace's own plot does, so the two timelines colour it alike."""
    trace = (
        recorded(EXAMPLES / "rolling-bad-version-auto-revert.json", 0)
        if source == "sim"
        else json.loads(LIVE.read_text())
    )
    replayed = {
        (i["instance_id"].split(".", 1)[1], i["version"]): i["manifest_name"]
        for i in replay_trace(trace).result.instances
    }
    drawn = {
        (i["instance_id"].split(".", 1)[1], i["version"]): i["manifest_name"] for i in result_of_trace(trace).instances
    }
    assert replayed == drawn
    assert {name for (_, version), name in drawn.items() if version == "3"} == {f"{trace['versions'][0]['key']}@1"}
