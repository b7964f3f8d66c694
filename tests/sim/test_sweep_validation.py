"""A sweep file reports every problem at once, each with its path: its own keys, each grid axis, each metric, and
each distinct problem of the scenario at the first grid point that has it; the CLI prints each on its own line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mn_deploy.cli import main
from sim import ScenarioError, read_sweep
from tests.sim.test_loader import json_values
from tests.sim.test_sweep import MAX_PARALLEL, START_FAILURE, write_sweep


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ScenarioError) as raised:
        read_sweep(path)
    return [str(p) for p in raised.value.problems]


def test_every_problem_of_the_sweep_file_is_reported(tmp_path: Path) -> None:
    path = write_sweep(
        tmp_path,
        runs=0,
        seed=-2,
        grid={MAX_PARALLEL: [], "manifests.v2.policies.update.max_paralel": [2], START_FAILURE: [0.1]},
        metrics=["outcome", "durations", "min_serving", 3],
        extra=True,
    )
    assert problems_of(path) == [
        "$.extra: unknown key",
        '$.grid["manifests.v2.policies.update.max_parallel"]: must list at least one value',
        '$.grid["manifests.v2.policies.update.max_paralel"]: '
        'not in the scenario (no "max_paralel" at $.manifests.v2.policies.update)',
        "$.seed: must be a non-negative integer",
        "$.runs: must be between 1 and 100000",
        '$.metrics[1]: unknown metric "durations" (expected one of outcome, duration_ms, min_serving, '
        "unhealthy_instances, exposure_ms, end_ms)",
        "$.metrics[3]: unknown metric 3 (expected one of outcome, duration_ms, min_serving, "
        "unhealthy_instances, exposure_ms, end_ms)",
    ]


def test_each_problem_of_the_scenario_is_reported_once_at_the_first_point_that_has_it(tmp_path: Path) -> None:
    path = write_sweep(tmp_path, grid={MAX_PARALLEL: [1, "two", -3], START_FAILURE: [0.0, 2.0]})
    scenario = tmp_path / "scenarios" / "tiny.json"
    update = "policies.update.max_parallel"
    assert problems_of(path) == [
        f"$.scenario: {scenario} at max_parallel=1, start_failure=2.0: "
        "$.behaviors.v2.start_failure: must be a probability between 0 and 1 (and at 2 other points)",
        f'$.scenario: {scenario} at max_parallel="two", start_failure=0.0: '
        f"$.manifests.v2: {update} must be a non-negative integer (and at 3 other points)",
    ]


def test_a_broken_scenario_file_reports_all_its_problems_once(tmp_path: Path) -> None:
    path = write_sweep(tmp_path)
    scenario = tmp_path / "scenarios" / "tiny.json"
    document = json.loads(scenario.read_text())
    document.update(seed=-1, name="")
    scenario.write_text(json.dumps(document))
    assert problems_of(path) == [
        f"$.scenario: {scenario} at max_parallel=1, start_failure=0.0: $.name: must be a non-blank string"
        " (and at 3 other points)",
        f"$.scenario: {scenario} at max_parallel=1, start_failure=0.0: $.seed: must be a non-negative integer"
        " (and at 3 other points)",
    ]


def test_sim_sweep_prints_each_problem_on_its_own_line_and_writes_nothing(tmp_path: Path) -> None:
    path = write_sweep(tmp_path, runs=0, seed=-2)
    out = tmp_path / "runs.csv"
    result = CliRunner().invoke(main, ["sim", "sweep", str(path), "--out", str(out), "--workers", "1"])
    assert (result.exit_code, result.stdout, out.exists()) == (2, "", False)
    assert result.stderr.splitlines() == [
        f"error: {path}: $.seed: must be a non-negative integer",
        f"error: {path}: $.runs: must be between 1 and 100000",
    ]


def test_sim_run_prints_each_problem_on_its_own_line_the_first_fifty_then_a_count(tmp_path: Path) -> None:
    write_sweep(tmp_path)
    scenario = tmp_path / "scenarios" / "tiny.json"
    document = json.loads(scenario.read_text())
    document["actions"] += [{"at_ms": -1, "promote": "api"}] * 60
    scenario.write_text(json.dumps(document))
    plot = tmp_path / "run.png"
    result = CliRunner().invoke(main, ["sim", "run", str(scenario), "--plot", str(plot)])
    lines = result.stderr.splitlines()
    assert (result.exit_code, result.stdout, plot.exists(), len(lines)) == (2, "", False, 51)
    assert lines[0] == f"error: {scenario}: $.actions[2].at_ms: must be at least 0"
    assert lines[49] == f"error: {scenario}: $.actions[51].at_ms: must be at least 0"
    assert lines[50] == f"error: {scenario}: and 10 more problems"


SWEEP_KEYS = st.sampled_from(["scenario", "runs", "seed", "grid", "metrics", "description", "$schema"]) | st.text(
    max_size=6
)
AXES = st.sampled_from([MAX_PARALLEL, START_FAILURE, "manifests.v2.policies.update.strategy", "behaviors.v9.x"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    changes=st.dictionaries(SWEEP_KEYS, json_values, max_size=3),
    grid=st.dictionaries(AXES | st.text(max_size=6), st.lists(json_values, max_size=3), max_size=2),
)
def test_fuzz_a_sweep_loads_or_names_every_problem_by_its_path(
    tmp_path_factory: pytest.TempPathFactory, changes: dict[str, Any], grid: dict[str, Any]
) -> None:
    """Any sweep keys and grid axes set to arbitrary JSON (NaN, odd text, nesting): it loads, or every problem is
    one line naming its JSONPath; never a traceback."""
    path = write_sweep(tmp_path_factory.mktemp("fuzz"), **{"runs": 1, "grid": grid, **changes})
    try:
        read_sweep(path)
    except ScenarioError as error:
        assert error.problems and "\n" not in str(error)
        if error.path == "":  # the file itself cannot be read (it holds NaN as Python writes it): that one problem
            assert len(error.problems) == 1
            return
        for problem in error.problems:
            assert problem.path.startswith("$") and problem.problem and "\n" not in str(problem), problem
