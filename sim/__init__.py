"""The simulated world: run a scenario file against the real rollout controller on SimPy time, once or as a
Monte Carlo sweep over a grid of settings.

from sim import read_scenario, run_scenario
result = run_scenario(read_scenario("examples/scenarios/rolling-success.json"), seed=3)

from sim import read_sweep, run_sweep
sweep = run_sweep(read_sweep("examples/sweeps/max-parallel-x-start-failure.json"), workers=2)
"""

from sim.result import Result
from sim.scenario import Scenario, Simulation, load_scenario, read_scenario, run_scenario
from sim.schema import ScenarioError
from sim.sweep import Sweep, SweepInterrupted, SweepResult, load_sweep, read_sweep, run_sweep
from sim.world import SimRuntime, SimulationError

__all__ = [
    "Result",
    "Scenario",
    "ScenarioError",
    "SimRuntime",
    "Simulation",
    "SimulationError",
    "Sweep",
    "SweepInterrupted",
    "SweepResult",
    "load_scenario",
    "load_sweep",
    "read_scenario",
    "read_sweep",
    "run_scenario",
    "run_sweep",
]
