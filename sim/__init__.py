"""The simulated world: run a scenario file against the real rollout controller on SimPy time.

from sim import read_scenario, run_scenario
result = run_scenario(read_scenario("examples/scenarios/rolling-success.json"), seed=3)
"""

from sim.result import Result
from sim.scenario import Scenario, Simulation, load_scenario, read_scenario, run_scenario
from sim.schema import ScenarioError
from sim.world import SimRuntime, SimulationError

__all__ = [
    "Result",
    "Scenario",
    "ScenarioError",
    "SimRuntime",
    "Simulation",
    "SimulationError",
    "load_scenario",
    "read_scenario",
    "run_scenario",
]
