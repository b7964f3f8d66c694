"""The simulated world: run a scenario file against the real rollout controller on SimPy time, once or as a
Monte Carlo sweep over a grid of settings.

from sim import read_scenario, run_scenario
result = run_scenario(read_scenario("examples/scenarios/rolling-success.json"), seed=3)

from sim import read_sweep, run_sweep
sweep = run_sweep(read_sweep("examples/sweeps/max-parallel-x-start-failure.json"), workers=2)

from sim import parse_requirement, verify   # docs/verification.md
verification = verify(document, [parse_requirement("max_bad_serving <= 2")], file="scenario.json", workers=2)

from sim import calibrate   # behaviors fitted from traces' facts: docs/traces.md, "Calibration"
calibration = calibrate([trace], by="manifest")   # .behaviors, a scenario's; .fits, what and how well
"""

from sim.calibrate import Calibration, CalibrationError, Fit, calibrate
from sim.parity import Divergence, Parity
from sim.requirements import Requirement, RequirementError, parse_requirement
from sim.result import Result
from sim.scenario import Scenario, Simulation, load_scenario, read_scenario, run_scenario
from sim.schema import ScenarioError
from sim.sweep import Sweep, SweepInterrupted, SweepResult, load_sweep, read_sweep, run_sweep
from sim.trace_replay import replay_trace
from sim.verification import Verification, verify
from sim.world import SimRuntime, SimulationError

__all__ = [
    "Calibration",
    "CalibrationError",
    "Divergence",
    "Fit",
    "Parity",
    "Requirement",
    "RequirementError",
    "Result",
    "Scenario",
    "ScenarioError",
    "SimRuntime",
    "Simulation",
    "SimulationError",
    "Sweep",
    "SweepInterrupted",
    "SweepResult",
    "Verification",
    "calibrate",
    "load_scenario",
    "load_sweep",
    "parse_requirement",
    "read_scenario",
    "read_sweep",
    "replay_trace",
    "run_scenario",
    "run_sweep",
    "verify",
]
