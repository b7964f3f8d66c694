"""A trace drawn as a run: `result_of_trace` of a simulation's own trace is the simulation's result (its
instances, events, versions' outcome and metrics), so a live rollout's plot shows what a simulated one would."""

from __future__ import annotations

from pathlib import Path

import pytest
from matplotlib.figure import Figure

from mn_deploy_core.trace import TraceError
from sim.plots import run_figure
from sim.scenario import Simulation, read_scenario
from sim.traced import result_of_trace

SCENARIOS = Path(__file__).resolve().parents[2] / "examples" / "scenarios"


def _without_manifest_names(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "manifest_name"} for row in rows]


NAMES = [
    "rolling-bad-version-auto-revert.json",
    "canary-manual-promote.json",
    "blue-green-topology-change.json",
    "pause-resume.json",
]


@pytest.mark.parametrize("name", NAMES)
def test_the_result_of_a_simulations_trace_is_the_simulations_result(name: str) -> None:
    simulation = Simulation(read_scenario(SCENARIOS / name), record=True)
    result = simulation.run()

    traced = result_of_trace(simulation.trace())

    assert _without_manifest_names(traced.instances) == _without_manifest_names(result.instances)
    assert traced.events == result.events
    assert traced.deployments == result.deployments
    assert traced.metrics == result.metrics
    assert {k: {**v, "agents": None} for k, v in traced.final.items()} == {
        k: {**v, "agents": None} for k, v in result.final.items()
    }


def test_a_version_that_runs_an_earlier_spec_again_is_named_and_coloured_as_that_one() -> None:
    simulation = Simulation(read_scenario(SCENARIOS / "rolling-bad-version-auto-revert.json"), record=True)
    simulation.run()

    traced = result_of_trace(simulation.trace())

    reverted = [v for v in traced.versions["agent-api"] if v["created_by"] == "auto_revert"]
    assert reverted and all(v["manifest_name"] == "agent-api@1" for v in reverted)
    figure = run_figure(traced, traced="sim")
    assert isinstance(figure, Figure)
    legend = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert {"agent-api@1 (primary)", "agent-api@2 (primary)"} <= set(legend)


def test_a_malformed_trace_is_refused_in_one_line() -> None:
    with pytest.raises(TraceError, match=r"^\$\.format"):
        result_of_trace({"format": 99})
