"""Sweeps: the file format, common random numbers, rows and summaries, failing runs, interruption, and
identical rows whatever executes them (process pools of 1 and 2 workers, a Dask cluster)."""

from __future__ import annotations

import csv
import dataclasses
import gc
import json
import random
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from distributed import Client, LocalCluster

import sim.scenario
import sim.sweep
from sim import (
    Result,
    ScenarioError,
    SweepInterrupted,
    load_scenario,
    read_scenario,
    read_sweep,
    run_scenario,
    run_sweep,
)
from sim.interrupts import DeferredInterrupt
from sim.measures import measure
from sim.overrides import with_overrides
from sim.summary import summarize
from sim.sweep import Sweep, SweepResult, run_seeds
from tests.sim.conftest import EXAMPLES

Doc = dict[str, Any]
MAX_PARALLEL = "manifests.v2.policies.update.max_parallel"
START_FAILURE = "behaviors.v2.start_failure"


def manifest(image: str) -> Doc:
    node = {
        "node_id": "worker",
        "agent_type": "executor",
        "count": 3,
        "config": {"image": image},
        "services": [{"name": "api", "checks": [{"type": "http", "path": "/health"}]}],
    }
    update = {"max_parallel": 1, "min_healthy_ms": 1000, "healthy_deadline_ms": 10000, "auto_revert": True}
    return {"job_type": "service", "deployment": {"key": "api"}, "nodes": [node], "policies": {"update": update}}


def tiny_scenario() -> Doc:
    """Three agents roll from w:1 to a w:2 whose starts fail now and then (auto_revert on): a few ms a run."""
    return {
        "name": "tiny",
        "manifests": {"v1": manifest("w:1"), "v2": manifest("w:2")},
        "behaviors": {
            "default": {"start_ms": {"lognormal": {"median": 1000, "sigma": 0.5}}, "check_ms": 200},
            "v2": {"start_failure": 0.3},
        },
        "actions": [{"at_ms": 0, "deploy": "v1"}, {"at_ms": 20000, "deploy": "v2"}],
    }


def write_sweep(tmp_path: Path, runs: int = 6, **changes: Any) -> Path:
    """scenarios/tiny.json and sweep.json (max_parallel x start_failure) in `tmp_path`; `changes` replace
    top-level keys of the sweep."""
    (tmp_path / "scenarios").mkdir(exist_ok=True)
    (tmp_path / "scenarios" / "tiny.json").write_text(json.dumps(tiny_scenario()))
    document = {
        "scenario": "scenarios/tiny.json",
        "runs": runs,
        "seed": 11,
        "grid": {MAX_PARALLEL: [1, 2], START_FAILURE: [0.0, 0.5]},
        "metrics": ["outcome", "duration_ms", "min_serving", "exposure_ms"],
        **changes,
    }
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(document))
    return path


def on_threads(sweep: Sweep, **kwargs: Any) -> SweepResult:
    """`run_sweep` on two threads: fast, and enough to finish runs out of order."""
    with ThreadPoolExecutor(2) as executor:
        return run_sweep(sweep, executor=executor, workers=2, **kwargs)


def csv_rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as file:
        return list(csv.reader(file))


# The file format


def test_a_sweep_file_loads_with_its_points_in_grid_order(tmp_path: Path) -> None:
    sweep = read_sweep(write_sweep(tmp_path))
    assert sweep.name == "sweep"
    assert sweep.scenario_file == str(tmp_path / "scenarios" / "tiny.json")
    assert [dict(p.params) for p in sweep.points] == [
        {MAX_PARALLEL: 1, START_FAILURE: 0.0},
        {MAX_PARALLEL: 1, START_FAILURE: 0.5},
        {MAX_PARALLEL: 2, START_FAILURE: 0.0},
        {MAX_PARALLEL: 2, START_FAILURE: 0.5},
    ]
    assert sweep.metrics == ("duration_ms", "min_serving", "exposure_ms")
    assert sweep.label(sweep.points[1]) == "max_parallel=1, start_failure=0.5"
    assert len(sweep.seeds) == 6


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"runz": 3}, "$.runz: unknown key"),
        ({"runs": 0}, "$.runs: must be between 1 and 100000"),
        (
            {"scenario": "missing.json"},
            "$.scenario: {tmp}/missing.json: cannot read the file: No such file or directory",
        ),
        (
            {"grid": {"manifests.v2.policies.update.max_paralel": [1]}},
            '$.grid["manifests.v2.policies.update.max_paralel"]: not in the scenario '
            '(no "max_paralel" at $.manifests.v2.policies.update)',
        ),
        (
            {"grid": {"manifests.v3.nodes": [1]}},
            '$.grid["manifests.v3.nodes"]: not in the scenario (no "v3" at $.manifests)',
        ),
        ({"grid": {MAX_PARALLEL: []}}, f'$.grid["{MAX_PARALLEL}"]: must list at least one value'),
        ({"metrics": ["outcome", "latency"]}, '$.metrics[1]: unknown metric "latency" (expected one of outcome, '),
        (
            {"grid": {START_FAILURE: [0.5, 1.5]}},
            "$.scenario: {tmp}/scenarios/tiny.json at start_failure=1.5: "
            "$.behaviors.v2.start_failure: must be a probability between 0 and 1",
        ),
    ],
)
def test_a_bad_sweep_is_a_scenario_error_naming_the_path(tmp_path: Path, changes: Doc, problem: str) -> None:
    with pytest.raises(ScenarioError) as raised:
        read_sweep(write_sweep(tmp_path, **changes))
    assert str(raised.value).startswith(problem.format(tmp=tmp_path))


def test_short_axis_names_grow_until_they_are_unique(tmp_path: Path) -> None:
    grid = {MAX_PARALLEL: [1], "manifests.v1.policies.update.max_parallel": [1], START_FAILURE: [0.0]}
    sweep = read_sweep(write_sweep(tmp_path, grid=grid))
    assert list(sweep.short_names.values()) == [
        "v2.policies.update.max_parallel",
        "v1.policies.update.max_parallel",
        "start_failure",
    ]


# Seeds and common random numbers


def test_run_seeds_are_children_of_one_seed_sequence_whatever_the_number_of_runs() -> None:
    assert run_seeds(11, 10)[:4] == run_seeds(11, 4)
    assert len(set(run_seeds(11, 1000))) == 1000
    assert all(0 <= seed < 2**63 for seed in run_seeds(11, 1000))
    assert run_seeds(12, 4) != run_seeds(11, 4)


def test_changing_the_grid_leaves_the_rows_of_a_point_as_they_were(tmp_path: Path) -> None:
    small = on_threads(read_sweep(write_sweep(tmp_path, grid={START_FAILURE: [0.5]})))
    large = on_threads(read_sweep(write_sweep(tmp_path, runs=9, grid={START_FAILURE: [0.2, 0.5, 0.9]})))
    same = [{k: v for k, v in row.items() if k != "point"} for row in large.rows if row[START_FAILURE] == 0.5]
    assert same[:6] == [{k: v for k, v in row.items() if k != "point"} for row in small.rows]


def test_every_point_runs_the_same_seeds(tmp_path: Path) -> None:
    result = on_threads(read_sweep(write_sweep(tmp_path)))
    seeds = [[row["seed"] for row in result.rows if row["point"] == p] for p in range(4)]
    assert seeds[0] == list(result.sweep.seeds) and all(s == seeds[0] for s in seeds)


# Rows, the CSV and the summary


def test_a_row_is_what_a_replay_of_its_point_and_seed_measures(tmp_path: Path) -> None:
    sweep = read_sweep(write_sweep(tmp_path, runs=3))
    result = on_threads(sweep)
    assert [(row["point"], row["run"]) for row in result.rows] == [(p, r) for p in range(4) for r in range(3)]
    for row in result.rows[::2]:
        scenario = load_scenario(with_overrides(sweep.scenario, sweep.points[row["point"]].params))
        measured = measure(run_scenario(scenario, seed=row["seed"]))
        assert {k: row[k] for k in ("outcome", *sweep.metrics)} == {k: measured[k] for k in ("outcome", *sweep.metrics)}
        assert row["error"] is None and row["replay"] is None


def test_rows_go_to_the_csv_in_order_and_the_summary_counts_them(tmp_path: Path) -> None:
    out = tmp_path / "runs.csv"
    result = on_threads(read_sweep(write_sweep(tmp_path)), out=out)
    rows = csv_rows(out)
    assert rows[0] == [
        "point",
        "run",
        "seed",
        MAX_PARALLEL,
        START_FAILURE,
        "outcome",
        "duration_ms",
        "min_serving",
        "exposure_ms",
        "error",
        "replay",
    ]
    assert [r[:3] for r in rows[1:]] == [[str(x["point"]), str(x["run"]), str(x["seed"])] for x in result.rows]
    first = result.rows[0]
    assert rows[1][3:7] == ["1", "0.0", first["outcome"], json.dumps(first["duration_ms"])]
    summary = result.summary
    assert [s.runs for s in summary] == [6, 6, 6, 6]
    for point in summary:
        assert sum(share.count for share in point.outcomes.values()) == 6
        assert point.metrics["duration_ms"].n == sum(
            1 for row in result.rows if row["point"] == point.point and row["duration_ms"] is not None
        )
    assert summary[0].outcomes["successful"].share == 1.0  # start_failure 0: nothing to revert
    data = json.loads(json.dumps(result.summary_json(), allow_nan=False))
    assert data["points"][3]["params"] == {MAX_PARALLEL: 2, START_FAILURE: 0.5}
    assert set(data["points"][3]["outcomes"]) == {row["outcome"] for row in result.rows}


def test_the_summary_depends_on_the_rows_not_on_their_order(tmp_path: Path) -> None:
    result = on_threads(read_sweep(write_sweep(tmp_path)))
    sweep = result.sweep
    shuffled = random.Random(3).sample(result.rows, len(result.rows))
    again = summarize([point.params for point in sweep.points], shuffled, sweep.metrics)
    assert json.dumps([dataclasses.asdict(s) for s in again]) == json.dumps(result.summary_json()["points"])


def test_the_rows_as_a_dataframe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = on_threads(read_sweep(write_sweep(tmp_path, runs=2)))
    frame = result.to_dataframe()
    assert list(frame.columns) == result.sweep.columns
    assert frame.shape == (8, len(result.sweep.columns))
    assert frame.groupby("point")["run"].count().tolist() == [2, 2, 2, 2]
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"to_dataframe needs pandas: pip install pandas"):
        result.to_dataframe()


def test_a_run_that_raises_is_an_error_row_with_its_replay_and_the_sweep_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep = read_sweep(write_sweep(tmp_path, runs=3))
    bad_seed = sweep.seeds[1]
    real = sim.sweep.run_scenario

    def flaky(scenario: Any, seed: int) -> Result:
        if seed == bad_seed:
            raise RuntimeError("boom\nsecond line")
        return real(scenario, seed=seed)

    monkeypatch.setattr(sim.sweep, "run_scenario", flaky)
    out = tmp_path / "runs.csv"
    result = on_threads(sweep, out=out)
    failed = [row for row in result.rows if row["outcome"] == "error"]
    assert [(row["point"], row["run"]) for row in failed] == [(p, 1) for p in range(4)]
    assert failed[3]["error"] == "RuntimeError: boom second line"
    assert failed[3]["replay"] == (
        f"mn-deploy sim run {tmp_path}/scenarios/tiny.json --set {MAX_PARALLEL}=2 --set {START_FAILURE}=0.5 "
        f"--seed {bad_seed}"
    )
    assert failed[3]["duration_ms"] is None
    assert [s.errors for s in result.summary] == [1, 1, 1, 1]
    assert len(csv_rows(out)) == 13


def test_ctrl_c_keeps_every_finished_row_on_disk(tmp_path: Path) -> None:
    out = tmp_path / "runs.csv"
    seen: list[Any] = []

    def interrupt_at_five(row: Any) -> None:
        seen.append(row)
        if len(seen) == 5:
            raise KeyboardInterrupt

    with pytest.raises(SweepInterrupted) as raised:
        on_threads(read_sweep(write_sweep(tmp_path, runs=50)), out=out, progress=interrupt_at_five)
    rows = csv_rows(out)[1:]
    assert len(raised.value.rows) == len(rows) == 5
    assert sorted((int(r[0]), int(r[1])) for r in rows) == sorted((r["point"], r["run"]) for r in seen)
    assert isinstance(raised.value, KeyboardInterrupt)


def press_ctrl_c() -> None:
    """SIGINT to this (the main) thread; `pthread_kill` runs the Python handler before it returns."""
    signal.pthread_kill(threading.get_ident(), signal.SIGINT)


def test_a_real_ctrl_c_is_taken_between_runs_so_the_count_and_the_file_agree(tmp_path: Path) -> None:
    out = tmp_path / "runs.csv"
    seen: list[Any] = []

    def press_ctrl_c_at_three(row: Any) -> None:
        seen.append(row)
        if len(seen) == 3:
            press_ctrl_c()

    with pytest.raises(SweepInterrupted) as raised:
        on_threads(read_sweep(write_sweep(tmp_path, runs=50)), out=out, progress=press_ctrl_c_at_three)
    assert len(raised.value.rows) == len(csv_rows(out)) - 1 == 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_ctrl_c_raises_at_once_and_other_threads_are_left_alone() -> None:
    with DeferredInterrupt() as interrupt:
        press_ctrl_c()
        assert interrupt.requested
        with pytest.raises(KeyboardInterrupt):
            press_ctrl_c()
    with ThreadPoolExecutor(1) as executor:
        installed = executor.submit(lambda: DeferredInterrupt().__enter__()._installed).result()
    assert not installed and signal.getsignal(signal.SIGINT) is signal.default_int_handler


# Measures of a run


@pytest.mark.parametrize(
    ("example", "until_ms", "outcome"),
    [
        ("rolling-bad-version-auto-revert", None, "reverted"),
        ("progress-deadline", None, "failed"),
        ("canary-auto-promote", None, "successful"),
        ("canary-manual-promote", None, "successful"),
        ("canary-auto-promote", 70_000, "running"),
        ("manual-rollback", None, "successful"),
    ],
)
def test_the_outcome_is_that_of_the_last_deploy(example: str, until_ms: float | None, outcome: str) -> None:
    result = run_scenario(read_scenario(EXAMPLES / f"{example}.json"), until_ms=until_ms)
    measured = measure(result)
    assert measured["outcome"] == outcome
    deploys = [d for d in result.metrics["per_deployment"] if d["version"] == "2"]
    assert measured["duration_ms"] == deploys[0]["duration_ms"]
    assert measured["end_ms"] == result.end_ms and measured["min_serving"] == result.metrics["min_serving"]


def test_no_deployment_is_the_none_outcome() -> None:
    scenario = tiny_scenario()
    scenario["actions"] = [{"at_ms": 0, "promote": "api"}]  # refused: nothing to promote
    result = run_scenario(load_scenario(scenario))
    assert result.deployments == [] and len(result.errors) == 1
    assert measure(result) == {
        "outcome": "none",
        "duration_ms": None,
        "min_serving": None,
        "unhealthy_instances": 0,
        "exposure_ms": 0.0,
        "end_ms": result.end_ms,
    }


# Executors


def test_process_pools_and_a_dask_cluster_write_the_same_rows(tmp_path: Path) -> None:
    sweep = read_sweep(write_sweep(tmp_path, runs=5))
    outputs = {}
    for workers in (1, 2):
        outputs[f"pool-{workers}"] = tmp_path / f"pool-{workers}.csv"
        run_sweep(sweep, workers=workers, out=outputs[f"pool-{workers}"])
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        outputs["dask"] = tmp_path / "dask.csv"
        run_sweep(sweep, executor=client.get_executor(pure=False), workers=2, out=outputs["dask"])
    texts = {name: path.read_text() for name, path in outputs.items()}
    assert texts["pool-1"] == texts["pool-2"] == texts["dask"]
    assert len(csv_rows(outputs["pool-1"])) == 21


# The examples


@pytest.mark.parametrize("path", sorted((EXAMPLES.parent / "sweeps").glob("*.json")), ids=lambda p: p.stem)
def test_example_sweeps_load_and_run(path: Path) -> None:
    sweep = dataclasses.replace(read_sweep(path), runs=2)
    assert len(sweep.grid) == 2 and sweep.runs == 2
    result = on_threads(sweep)
    assert len(result.rows) == 2 * len(sweep.points)
    assert all(row["outcome"] != "error" for row in result.rows)


def test_a_large_runs_simulation_is_freed_before_the_next_run_of_a_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """A simulation is held by reference cycles: left to the collector, a worker's next run would start beside the
    whole heap of the last. `run_scenario` collects a large one (here: any run, the size made 1) at once."""
    scenario = read_scenario(EXAMPLES / "rolling-success.json")
    gc.collect()
    gc.disable()
    try:
        run_scenario(scenario)
        assert gc.collect() > 0, "a small run is left to the collector: the cycles this test is about exist"
        monkeypatch.setattr(sim.scenario, "LARGE_RUN", 1)
        run_scenario(scenario)
        assert gc.collect() == 0, "the large run's simulation was freed by run_scenario"
    finally:
        gc.enable()
