"""`mn-deploy sim sweep` and `sim run --set` through click's CliRunner, plus Ctrl-C on a real process."""

from __future__ import annotations

import csv
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from distributed import LocalCluster

import mn_deploy.sim_cli
import sim.sweep
from mn_deploy.cli import main
from sim import Result as SimResult
from sim import read_sweep
from sim.measures import measure
from tests.sim.conftest import EXAMPLES
from tests.sim.test_sweep import MAX_PARALLEL, START_FAILURE, on_threads, write_sweep

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from mn_deploy.cli import main; main()"]


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, ["sim", *args], env=env)


def csv_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_plain_output_files_and_json_summary(tmp_path: Path) -> None:
    sweep_file = write_sweep(tmp_path, runs=4)
    out, summary, plot = tmp_path / "runs.csv", tmp_path / "summary.json", tmp_path / "sweep.png"
    result = invoke(
        "sweep", str(sweep_file), "--workers", "2", "--out", str(out), "--summary", str(summary), "--plot", str(plot)
    )
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # no progress bar when stderr is not a terminal
    lines = result.stdout.splitlines()
    assert lines[:7] == [
        "Sweep: sweep",
        f"Scenario: {tmp_path}/scenarios/tiny.json",
        "Runs: 4 per point x 4 points = 16",
        "Seed: 11",
        "Workers: 2 processes",
        "Intervals: 95% percentile bootstrap of the mean (2,000 resamples, bootstrap seed 0); shares: 95% Wilson score",
        f"Rows: {out}",
    ]
    assert f"Summary: {summary}" in lines and f"Plot: {plot}" in lines
    assert "# Point: point | parameters | runs | errors" in lines
    assert "Point: 3 | max_parallel=2, start_failure=0.5 | 4 | 0" in lines
    assert "# Outcome: point | outcome | share | interval" in lines
    assert "Outcome: 0 | successful | 1.000 | [0.510, 1.000]" in lines
    assert "# Metric: point | metric | n | mean | interval" in lines
    assert any(line.startswith("Metric: 0 | duration_ms | 4 | ") for line in lines)
    assert len(list(csv.reader(out.open()))) == 17
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads(summary.read_text())
    printed = invoke("sweep", str(sweep_file), "--workers", "1", "--json")
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.stdout) == saved
    assert saved["intervals"] == {
        "confidence": 0.95,
        "metrics": {"method": "percentile bootstrap of the mean", "resamples": 2000, "seed": 0},
        "outcomes": {"method": "Wilson score"},
    }
    assert saved["points"][0]["outcomes"]["successful"] == {
        "count": 4,
        "n": 4,
        "share": 1.0,
        "low": pytest.approx(0.5101, abs=1e-4),
        "high": 1.0,
    }


def test_a_terminal_gets_rich_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mn_deploy.sim_cli, "plain_output", lambda: False)
    result = invoke("sweep", str(write_sweep(tmp_path, runs=2)), "--workers", "1")
    assert result.exit_code == 0, result.output
    for title in (
        "mn-deploy sim",
        "Points",
        "Outcome shares (95% Wilson interval)",
        "Metric means (95% bootstrap interval)",
    ):
        assert title in result.stdout
    assert "Point:" not in result.stdout


def test_the_progress_bar_counts_runs_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mn_deploy.sim_cli, "is_terminal", lambda stream: True)
    with mn_deploy.sim_cli.run_progress(3) as advance:
        assert advance is not None
        for _ in range(3):
            advance({})
    monkeypatch.setattr(mn_deploy.sim_cli, "is_terminal", lambda stream: False)
    with mn_deploy.sim_cli.run_progress(3) as advance:
        assert advance is None


def test_failed_runs_are_listed_with_their_replay_and_the_sweep_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep_file = write_sweep(tmp_path, runs=3)
    bad_seed = read_sweep(sweep_file).seeds[2]
    real = sim.sweep.run_scenario

    def flaky(scenario: Any, seed: int) -> SimResult:
        if seed == bad_seed:
            raise RuntimeError("boom")
        return real(scenario, seed=seed)

    monkeypatch.setattr(sim.sweep, "run_scenario", flaky)
    monkeypatch.setattr(
        mn_deploy.sim_cli, "run_sweep", lambda sweep, executor, workers, **kwargs: on_threads(sweep, **kwargs)
    )
    result = invoke("sweep", str(sweep_file), "--workers", "1")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "Failed runs: 4 (at most 5 listed below)" in lines
    settings = f"--set {MAX_PARALLEL}=1 --set {START_FAILURE}=0.0"
    replay = f"mn-deploy sim run {tmp_path}/scenarios/tiny.json {settings} --seed {bad_seed}"
    assert "# Failed: point | run | seed | error | replay" in lines
    assert f"Failed: 0 | 2 | {bad_seed} | RuntimeError: boom | {replay}" in lines
    assert "Point: 0 | max_parallel=1, start_failure=0.0 | 3 | 1" in lines
    assert "Outcome: 0 | error | 0.333 | [0.061, 0.792]" in lines


def test_a_replay_command_reproduces_its_row(tmp_path: Path) -> None:
    sweep = read_sweep(write_sweep(tmp_path, runs=2))
    row = on_threads(sweep).rows[7]
    words = shlex.split(sweep.replay(row["point"], row["run"]))
    assert words[:3] == ["mn-deploy", "sim", "run"]
    replayed = CliRunner().invoke(main, [*words[1:], "--json"])
    assert replayed.exit_code == 0, replayed.output
    measured = measure(SimResult.from_json(json.loads(replayed.stdout)))
    assert {k: measured[k] for k in ("outcome", *sweep.metrics)} == {k: row[k] for k in ("outcome", *sweep.metrics)}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            {"grid": {"behaviors.v3.start_failure": [0.1]}},
            '$.grid["behaviors.v3.start_failure"]: not in the scenario (no "v3" at $.behaviors)',
        ),
        ({"seed": -1}, "$.seed: must be a non-negative integer"),
        ({"runs": 10**12}, "$.runs: must be between 1 and 100000"),
        (
            {
                "grid": {
                    "manifests.v2.policies.update.max_parallel": [1] * 101,
                    "behaviors.v2.start_failure": [0.0] * 100,
                }
            },
            "$.grid: must have at most 10000 points (the product of its axes' lengths)",
        ),
    ],
)
def test_a_bad_sweep_file_is_one_line_and_exit_2(tmp_path: Path, change: dict[str, Any], problem: str) -> None:
    path = write_sweep(tmp_path, **change)
    result = invoke("sweep", str(path))
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"error: {path}: {problem}\n"


def test_outputs_that_cannot_be_written_fail_before_any_run(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "runs.csv"
    result = invoke("sweep", str(write_sweep(tmp_path)), "--out", str(target))
    assert result.exit_code == 2
    assert result.stderr == f"error: {target}: cannot write: {target.parent} is not a writable directory\n"


def test_workers_and_dask_exclude_each_other(tmp_path: Path) -> None:
    result = invoke("sweep", str(write_sweep(tmp_path)), "--workers", "2", "--dask", "tcp://127.0.0.1:1")
    assert result.exit_code == 2
    assert "--workers and --dask exclude each other" in result.stderr


def test_dask_without_distributed_says_which_extra_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)
    result = invoke("sweep", str(write_sweep(tmp_path)), "--dask", "tcp://127.0.0.1:1")
    assert (result.exit_code, result.stderr) == (
        2,
        "error: --dask needs the dask extra: pip install 'mn-deploy[dask]'\n",
    )


def test_an_unreachable_scheduler_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """In its own process: a failed connection leaves distributed's shared event loop with loose ends."""
    env = {**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "0.5s"}
    done = subprocess.run(
        [*CLI, "sim", "sweep", str(write_sweep(tmp_path)), "--dask", "tcp://127.0.0.1:1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "error: --dask tcp://127.0.0.1:1: cannot reach the scheduler: "
        "Timed out trying to connect to tcp://127.0.0.1:1 after 0.5 s\n"
    )


def test_a_dask_cluster_writes_the_rows_a_local_pool_writes(tmp_path: Path) -> None:
    sweep_file = write_sweep(tmp_path, runs=3)
    local, remote = tmp_path / "local.csv", tmp_path / "dask.csv"
    assert invoke("sweep", str(sweep_file), "--workers", "1", "--out", str(local)).exit_code == 0
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        result = invoke("sweep", str(sweep_file), "--dask", cluster.scheduler_address, "--out", str(remote))
    assert result.exit_code == 0, result.output
    assert f"Workers: Dask at {cluster.scheduler_address} (2 threads)" in result.stdout.splitlines()
    assert csv_text(remote) == csv_text(local)


def test_ctrl_c_stops_the_sweep_and_keeps_the_finished_rows(tmp_path: Path) -> None:
    """A real Ctrl-C reaches the whole process group, pool workers included: only the parent reacts."""
    sweep_file, out = write_sweep(tmp_path, runs=5000), tmp_path / "runs.csv"
    process = subprocess.Popen(
        [*CLI, "sim", "sweep", str(sweep_file), "--workers", "2", "--out", str(out)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "MN_CLI_OUTPUT": "plain"},
    )
    deadline = time.monotonic() + 60
    while not (out.exists() and len(out.read_text().splitlines()) >= 3):  # the header and two rows
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    rows = list(csv.reader(out.open()))[1:]
    assert process.returncode == 130, stderr
    assert stdout == ""
    assert stderr == f"error: interrupted after {len(rows)} of 20000 runs; their rows are in {out}\n"
    assert 2 <= len(rows) < 20000
    assert all(len(row) == 11 and row[5] for row in rows)


# `sim run --set`


EXAMPLE = EXAMPLES / "rolling-bad-version-auto-revert.json"


def test_run_set_changes_the_scenario_as_a_sweep_point_does() -> None:
    result = invoke(
        "run",
        str(EXAMPLE),
        "--json",
        "--set",
        "manifests.v2.policies.update.max_parallel=4",
        "--set",
        "behaviors.v2.start_failure=0",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["deployments"][1]["policy"]["max_parallel"] == 4
    assert [d["status"] for d in data["deployments"]] == ["successful", "successful"]


@pytest.mark.parametrize(
    ("assignment", "problem"),
    [
        (
            "manifests.v2.policies.update.max_paralel=4",
            "--set manifests.v2.policies.update.max_paralel: "
            'not in the scenario (no "max_paralel" at $.manifests.v2.policies.update)',
        ),
        ("behaviors.v2.start_failure", "--set behaviors.v2.start_failure: expected PATH=VALUE"),
        ("behaviors.v2.start_failure=2", "$.behaviors.v2.start_failure: must be a probability between 0 and 1"),
    ],
)
def test_run_set_errors_are_one_line_and_exit_2(assignment: str, problem: str) -> None:
    result = invoke("run", str(EXAMPLE), "--set", assignment)
    assert (result.exit_code, result.stderr) == (2, f"error: {EXAMPLE}: {problem}\n")


def test_a_run_that_breaks_replays_with_its_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(mn_deploy.sim_cli.Simulation, "run", explode)
    result = invoke("run", str(EXAMPLE), "--seed", "7", "--set", "actions.1.deploy=v2", "--until-ms", "5000")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: the run failed at seed 7 (RuntimeError: boom); replay: "
        f"mn-deploy sim run {EXAMPLE} --set 'actions.1.deploy=\"v2\"' --seed 7 --until-ms 5000\n"
    )


def test_unknown_policy_keys_are_warned_about_once_for_the_whole_grid(tmp_path: Path) -> None:
    sweep_file = write_sweep(tmp_path, runs=1)
    scenario_file = tmp_path / "scenarios" / "tiny.json"
    scenario = json.loads(scenario_file.read_text())
    for manifest in scenario["manifests"].values():
        manifest["policies"]["update"]["max_paralel"] = 3
    scenario_file.write_text(json.dumps(scenario))
    result = invoke("sweep", str(sweep_file), "--workers", "1", "--json")
    assert result.exit_code == 0
    warned = [
        f"warning: {scenario_file}: $.manifests.{name}.policies.update.max_paralel: unknown policy key, ignored"
        for name in scenario["manifests"]
    ]
    assert result.stderr.splitlines() == warned
