"""Parity in CI (issue 16): one scenario, both worlds, the same decisions.

Each case is a scenario file (tests/e2e/scenarios/parity-*.json) of ten agents, one node each, running the hello
bundle's agent. Its versions are deployed on a real dev stack (redis-server, a controller, two workers, real agent
processes), every agent told by its command line what the scenario's behaviors drew for it, with the simulator's
own draws (`Behavior.fate`); the operator acts as the scenario says, at the live moment its condition holds (a
deploy once the previous one settled, a promote once the canaries await it). Then the live trace is exported,
replayed in the simulator, and the replay must decide exactly what the live controller decided; and the trace,
calibrated, must give back the parameters the agents were drawn from, as far as ten agents and a live world can
show them.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from backends.redis.client import connect
from mn_deploy.traces import read_trace
from mn_deploy_core.trace import check_trace
from sim import Fit, Scenario, calibrate, read_scenario, replay_trace, run_scenario
from sim.behavior import NEVER, Fate
from sim.distributions import LogNormal
from sim.quantiles import quantile_interval
from sim.streams import RandomStreams
from tests.e2e.conftest import BUNDLES, World

pytestmark = pytest.mark.e2e

SCENARIOS = Path(__file__).parent / "scenarios"
KEY = "parity"
SETTLE_S = 90.0
PROBE_INTERVAL_MS = 100.0
"""The manifests' `interval_ms`: a check passes at the first probe after the agent is healthy."""
STARTUP_MS = 10_000.0
"""What the agent's own start adds before its `--healthy-after-ms` counts: the worker reports READY once it has
started the process, and the interpreter and its imports come after. Only the machine's load decides it: measured
at 0.45-0.8 s when ten agents start at once on two cores shared with other test runs, up to 1.7 s with six busy
processes beside them, and more on a loaded CI machine. The bound is there to catch an agent that misreads its
argument (seconds for ms: a thousand times the draw), not to measure the start; it stays within the manifests'
15 s healthy deadline."""
READY_MS = 500.0
"""How far apart the controller may take in the RUNNING and READY a worker reports together: each fact is stamped
when the controller takes it in, after deciding on the one before (2-52 ms measured)."""
GRAIN_MS = PROBE_INTERVAL_MS + STARTUP_MS
"""How much later than drawn a live check may pass: a live check latency is the drawn one plus up to this."""

CASES = {
    "parity-rolling": [("successful", "initial", "rolling"), ("successful", "agent_level", "rolling")],
    "parity-canary": [("successful", "initial", "rolling"), ("successful", "agent_level", "canary")],
    "parity-blue-green": [("successful", "initial", "rolling"), ("successful", "blue_green", "blue-green")],
    "parity-auto-revert": [
        ("successful", "initial", "rolling"),
        ("failed", "agent_level", "rolling"),
        ("successful", "agent_level", "rolling"),
    ],
}
"""What each case's deployments do (status, mode, strategy), in the simulator and live alike, so that each case is
the route its name says before its parity means anything."""


def routes(deployments: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, str]]:
    """Each deployment's status, mode and strategy: a simulated result's and a trace's records read alike."""
    return [(str(d["status"]), d["mode"], d["strategy"]) for d in deployments]


def told(fate: Fate) -> list[str]:
    """The agent's arguments that make it live out the first run of `fate`. Live, READY comes with RUNNING and the
    worker's own start is all of start_ms, so a fate that draws either, a failed start or a crash is refused: the
    scenario asks for what this agent cannot show."""
    if fate.start_ms[0] or fate.ready_ms[0] or fate.start_fails[0] or fate.crash_after_ms[0] != NEVER:
        raise ValueError(f"a live agent cannot live out {fate}")
    return ["--healthy-after-ms", f"{fate.check_ms[0]:.0f}", *(["--failing-health"] if fate.checks_fail else [])]


def drawn_manifests(scenario: Scenario) -> dict[str, dict[str, Any]]:
    """Every manifest with each agent's command extended by what the scenario's behaviors drew for it, from the
    scenario's seed, manifest by manifest and agent by agent in file order. One run each: a restarted agent would
    get the same arguments again."""
    streams = RandomStreams.from_seed(scenario.seed)
    drawn = {}
    for name, document in scenario.documents.items():
        manifest = copy.deepcopy(dict(document))
        for node in manifest["nodes"]:
            assert node.get("count", 1) == 1, "one node per agent: each agent gets its own arguments"
            fate = scenario.behaviors.resolve(name, node["node_id"]).fate(streams, 1)
            node["config"]["command"] += told(fate)
        drawn[name] = manifest
    return drawn


def bundles_of(manifests: Mapping[str, Mapping[str, Any]], root: Path) -> Path:
    """A bundle directory per case: each manifest as `<root>/parity/<name>.json` beside the hello agent's payloads."""
    directory = root / "parity"
    shutil.copytree(BUNDLES / "hello" / "payloads", directory / "payloads")
    for name, manifest in manifests.items():
        (directory / f"{name}.json").write_text(json.dumps(manifest))
    return root


def act(world: World, scenario: Scenario) -> None:
    """The scenario's actions, in order, each at the live moment its condition holds: a deploy once the key's
    previous deployment settled, a promote once the canaries await it. Then wait for the key to settle."""
    for i, action in enumerate(scenario.actions):
        if i:
            settled = world.settled(KEY, SETTLE_S)
        if action.verb == "deploy":
            world.deploy(f"parity/{action.target}.json", **action.options.get("overrides", {}))
        elif action.verb == "promote":
            assert settled["status"] == "awaiting_promotion", settled
            world.client.promote_deployment(action.target)
        else:
            raise ValueError(f"this test performs deploys and promotes, not {action.verb}")
    world.settled(KEY, SETTLE_S)


def exported(world: World) -> dict[str, Any]:
    """The key's trace, read from the stack's Redis as `deployment export` reads it."""
    client = connect(world.stack.redis_url)
    try:
        return check_trace(read_trace(client, KEY))
    finally:
        client.close()


def scenario_names(trace: Mapping[str, Any], scenario: Scenario) -> dict[str, str]:
    """The scenario's manifest name of each of the trace's manifest names, by spec digest: the versions created
    by a deploy, in order, are the scenario's deploys (a revert runs the spec of the version it restores)."""
    deployed = [a.target for a in scenario.actions if a.verb == "deploy"]
    versions = trace["versions"]
    by_digest = dict(zip([v["spec_digest"] for v in versions if v["created_by"] == "deploy"], deployed, strict=True))
    return {v["manifest"]: by_digest[v["spec_digest"]] for v in versions}


def median_interval(fit: Fit) -> tuple[float, float]:
    """The 95% interval of the fitted distribution's median, whichever family won (for a uniform, the midpoint of
    its bounds' intervals: conservative, as the two are not independent; for values no family fits, their median's
    order-statistic interval)."""
    intervals = fit.intervals
    high: float | None
    if fit.family == "lognormal":
        low, high = intervals["median"]
    elif fit.family == "normal":
        low, high = intervals["mean"]
    elif fit.family == "exponential":
        low, high = (None if end is None else end * 0.6931471805599453 for end in intervals["mean"])  # ln 2
        assert low is not None
    elif fit.family == "uniform":
        (low_low, low_high), (high_low, high_high) = intervals["low"], intervals["high"]
        low, high = (low_low + high_low) / 2, None if high_high is None else (low_high + high_high) / 2
    elif fit.family == "empirical":  # no family fits (a loaded machine spreads the starts): the values' own median
        median = quantile_interval(fit.value["empirical"], 0.5)
        low, high = -math.inf if median.low is None else median.low, median.high
    else:
        raise AssertionError(f"a check latency fitted as {fit.family}: {fit}")
    return low, float("inf") if high is None else high


def check_calibration(trace: dict[str, Any], scenario: Scenario, manifests: Mapping[str, Mapping[str, Any]]) -> None:
    """What calibration can give back from ten agents of a live world, checked against the scenario:

    - start_failure and check_failure: the drawn probability lies in the fitted Clopper-Pearson interval. The
      manifests give an agent 15 s to be healthy (`healthy_deadline_ms`, counted from placement), so that an
      agent slow to start on a loaded machine is not judged unhealthy, which calibration counts as failing checks;
    - ready_ms: 0 as drawn, up to `READY_MS` (the worker reports RUNNING and READY together; the controller
      stamps each when it takes it in);
    - check_ms: each instance passed its check no sooner than drawn and at most `GRAIN_MS` later (the probe's
      interval and the agent's own start), and the scenario's median lies in the fitted median's interval, moved
      down by that grain. A live check latency is the drawn one plus the agent's start, which only the machine's
      load decides: the fitted median can only be above the truth, by as much as the start took. Its spread is
      not checked: ten values, each shifted by a start that varies by hundreds of ms, say little about a sigma
      of 0.3;
    - crash_after_ms: nothing crashed, as drawn (never);
    - start_ms is not checked: the scenario's is 0, the live one is the worker's (picking the order up, writing
      the payloads, starting the process), which the simulator folds into start_ms.
    """
    names = scenario_names(trace, scenario)
    calibration = calibrate([trace])
    fits = {(fit.manifest, fit.field): fit for fit in calibration.fits}
    for manifest, observed in calibration.observations.items():
        name = names[manifest]
        behaviors = {scenario.behaviors.resolve(name, node["node_id"]) for node in scenario.documents[name]["nodes"]}
        assert len(behaviors) == 1, "every agent of a parity manifest behaves alike"
        behavior = behaviors.pop()
        for field, truth in (("start_failure", behavior.start_failure), ("check_failure", behavior.check_failure)):
            fit = fits[(manifest, field)]
            if fit.family == "probability":
                low, high = fit.intervals["p"]
                assert low <= truth <= high, f"{manifest} {field}: {truth} outside {fit}"
        assert max(observed.ready_ms, default=0.0) < READY_MS, f"{manifest}: ready_ms {observed.ready_ms}"
        crash = fits[(manifest, "crash_after_ms")]
        assert crash.family in ("none", "unset"), f"{manifest}: nothing crashed, yet {crash}: {exits(trace)}"
        if behavior.check_failure == 0:
            check_latencies(trace, manifest, names, manifests)
            fit = fits[(manifest, "check_ms")]
            assert isinstance(behavior.check_ms, LogNormal)
            low, high = median_interval(fit)
            assert low - GRAIN_MS <= behavior.check_ms.median <= high, f"{manifest} check_ms: {fit}"


def exits(trace: Mapping[str, Any]) -> list[tuple[str, list[tuple[str, float]]]]:
    """The facts of every instance that exited on its own, to say what a crash was (its agent's log, printed with
    the stack's, says why)."""
    return [
        (instance["instance_id"], [(fact["kind"], fact["t_ms"]) for fact in instance["facts"]])
        for instance in trace["instances"]
        if any(fact["kind"] == "exited" for fact in instance["facts"])
    ]


def check_latencies(
    trace: Mapping[str, Any], manifest: str, names: Mapping[str, str], manifests: Mapping[str, Mapping[str, Any]]
) -> None:
    """Every instance of `manifest` passed its check between its drawn `--healthy-after-ms` and `GRAIN_MS` later,
    counted from READY (which came with RUNNING)."""
    of_manifest = {v["version"] for v in trace["versions"] if names[v["manifest"]] == names[manifest]}
    told_ms = {
        node["node_id"]: float(node["config"]["command"][node["config"]["command"].index("--healthy-after-ms") + 1])
        for node in manifests[names[manifest]]["nodes"]
    }
    seen = 0
    for instance in trace["instances"]:
        if instance["version"] not in of_manifest:
            continue
        kinds = {fact["kind"]: fact["t_ms"] for fact in reversed(instance["facts"])}  # the first of each kind
        if "ready" in kinds and "check_passing" in kinds:
            latency = kinds["check_passing"] - kinds["ready"]
            drawn = told_ms[instance["agent_id"]]
            assert drawn <= latency <= drawn + GRAIN_MS, f"{instance['instance_id']}: {latency} ms, told {drawn}"
            seen += 1
    assert seen >= 5, f"{manifest}: only {seen} instances passed their checks"


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_live_rollout_replays_with_identical_decisions_and_calibrates_back(
    case: str, world: World, tmp_path: Path
) -> None:
    scenario = read_scenario(SCENARIOS / f"{case}.json")
    assert routes(run_scenario(scenario).to_json()["deployments"]) == CASES[case], "simulated"
    manifests = drawn_manifests(scenario)
    live = replace(world, bundles=bundles_of(manifests, tmp_path / "bundles"))

    act(live, scenario)
    trace = exported(live)

    assert routes(trace["deployments"]) == CASES[case], "live"
    assert [verb for a in trace["actions"] for verb in ("deploy", "promote") if verb in a] == [
        a.verb for a in scenario.actions
    ]
    assert trace["source"] == "live" and trace["complete"]
    for recorded_name, name in scenario_names(trace, scenario).items():
        commands = [node["config"]["command"] for node in trace["manifests"][recorded_name]["nodes"]]
        assert commands == [node["config"]["command"] for node in manifests[name]["nodes"]], "deployed as drawn"
    parity = replay_trace(trace)
    recorded = sum(len(d["events"]) for d in trace["deployments"])
    shown = json.dumps({k: v for k, v in parity.to_json().items() if k != "result"}, indent=1)
    assert parity.identical, f"the replay diverged:\n{shown}"
    assert (parity.compared, parity.warnings) == (recorded, ()), shown
    print(f"{case}: parity over {parity.compared} decisions, max time skew {parity.max_skew_ms:.0f} ms")

    check_calibration(trace, scenario, manifests)
