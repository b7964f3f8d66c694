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

from sim import Planned, predict   # a deploy predicted from a key's history: docs/traces.md, "Planning a deploy"
prediction = predict(trace, Planned(manifest, version="3"), runs=100)   # .duration_median, .outcomes, .setup.notes

from sim import tune   # the fastest policy of a grid verified to meet requirements: docs/verification.md, "Tuning"
tuning = tune(document, {"manifests.v2.policies.update.max_parallel": [1, 2]}, requirements, "duration_ms", file="f")

from sim import explain   # the story of a run: each decision with the rule behind it (docs/rules.md)
for line in explain(result): print(line.from_ms, line.what, line.agents_text(), line.rule, line.why)

Plots need matplotlib and live in `sim.plots` (its `__all__`), so `import sim` stays light.
"""

from sim.calibrate import Calibration, CalibrationError, Fit, calibrate
from sim.explain import StoryLine, explain
from sim.jsonfile import read_json
from sim.overrides import with_overrides
from sim.parity import Divergence, Parity
from sim.prediction import Planned, Prediction, PredictionError, predict, prediction_setup
from sim.reproduce import reproduce_command
from sim.requirements import Requirement, RequirementError, measures_of, parse_requirement
from sim.result import Result
from sim.scenario import Scenario, Simulation, load_scenario, read_scenario, run_scenario
from sim.schema import ScenarioError
from sim.stats import Estimate, Share, mean_interval, wilson_interval
from sim.sweep import Sweep, SweepInterrupted, SweepResult, load_sweep, read_sweep, run_sweep
from sim.trace_replay import replay_trace
from sim.traced import result_of_trace
from sim.tuning import Candidate, Standing, Tuning, TuningVerdict, tune
from sim.verification import Verification, verify
from sim.world import SimRuntime, SimulationError

__all__ = [
    "Calibration",
    "CalibrationError",
    "Candidate",
    "Divergence",
    "Estimate",
    "Fit",
    "Parity",
    "Planned",
    "Prediction",
    "PredictionError",
    "Requirement",
    "RequirementError",
    "Result",
    "Scenario",
    "ScenarioError",
    "Share",
    "SimRuntime",
    "Simulation",
    "SimulationError",
    "Standing",
    "StoryLine",
    "Sweep",
    "SweepInterrupted",
    "SweepResult",
    "Tuning",
    "TuningVerdict",
    "Verification",
    "calibrate",
    "explain",
    "load_scenario",
    "load_sweep",
    "mean_interval",
    "measures_of",
    "parse_requirement",
    "predict",
    "prediction_setup",
    "read_json",
    "read_scenario",
    "read_sweep",
    "replay_trace",
    "reproduce_command",
    "result_of_trace",
    "run_scenario",
    "run_sweep",
    "tune",
    "verify",
    "wilson_interval",
    "with_overrides",
]
