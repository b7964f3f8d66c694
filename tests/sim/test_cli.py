"""`mn-deploy sim run` through click's CliRunner: output modes, plots, and one-line errors with exit 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import mn_deploy.sim_cli
from mn_deploy.cli import main
from sim import read_scenario, run_scenario
from tests.sim.conftest import EXAMPLES

EXAMPLE = EXAMPLES / "canary-manual-promote.json"
RESULT_KEYS = [
    "scenario",
    "seed",
    "end_ms",
    "deployments",
    "versions",
    "instances",
    "events",
    "errors",
    "final",
    "metrics",
]


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, ["sim", "run", *args], env=env)


def write(tmp_path: Path, document: Any) -> str:
    path = tmp_path / "scenario.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return str(path)


def broken(change: str) -> Any:
    doc = json.loads(EXAMPLE.read_text())
    if change == "unknown key":
        doc["behaviors"]["default"]["ready_msec"] = 5
    elif change == "bad distribution":
        doc["behaviors"]["default"]["start_ms"] = {"lognormal": {"median": -3, "sigma": 0.4}}
    elif change == "unknown manifest":
        doc["actions"][1]["deploy"] = "v9"
    return doc


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ("unknown key", "$.behaviors.default.ready_msec: unknown key"),
        ("bad distribution", "$.behaviors.default.start_ms.lognormal.median: must be greater than 0"),
        ("unknown manifest", '$.actions[1].deploy: unknown manifest "v9"'),
    ],
)
def test_bad_scenarios_are_one_line_with_the_path_and_exit_2(tmp_path: Path, change: str, problem: str) -> None:
    path = write(tmp_path, broken(change))
    result = invoke(path)
    assert result.exit_code == 2
    assert result.stderr == f"error: {path}: {problem}\n"
    assert result.stdout == ""


def test_unreadable_and_malformed_files_exit_2(tmp_path: Path) -> None:
    missing = invoke(str(tmp_path / "nope.json"))
    assert (missing.exit_code, missing.stderr) == (
        2,
        f"error: {tmp_path / 'nope.json'}: cannot read the file: No such file or directory\n",
    )
    path = write(tmp_path, "{not json")
    malformed = invoke(path)
    assert malformed.exit_code == 2
    assert (
        malformed.stderr
        == f"error: {path}: not valid JSON: Expecting property name enclosed in double quotes (line 1, column 2)\n"
    )


def test_json_prints_the_result_alone(tmp_path: Path) -> None:
    result = invoke(str(EXAMPLE), "--json", "--seed", "5")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert list(data) == RESULT_KEYS
    assert data == run_scenario(read_scenario(EXAMPLE), seed=5).to_json()


def test_the_summary_is_plain_text_when_not_a_terminal() -> None:
    for env in (None, {"MN_CLI_OUTPUT": "plain"}):
        result = invoke(str(EXAMPLE), env=env)
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        assert lines[:2] == ["Scenario: canary-manual-promote", "Seed: 1"]
        assert any(line.startswith("Description: Two canaries") for line in lines)
        assert "Deployment: dep_agent-api_2 | 2 | successful | Deployment completed successfully | 89642.9 ms" in lines
        assert "Version: agent-api | 2 | v2 | deploy | stable" in lines
        assert "Metric: min_serving | 8" in lines
        assert any(line.startswith("Refused: 61000.0 ms") for line in lines)


def test_a_terminal_gets_rich_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mn_deploy.sim_cli, "_plain_output", lambda: False)
    result = invoke(str(EXAMPLE))
    assert result.exit_code == 0, result.output
    for title in ("mn-deploy sim", "Deployments", "Versions", "Metrics", "Refused actions"):
        assert title in result.stdout
    assert "dep_agent-api_2" in result.stdout and "Deployment:" not in result.stdout


def test_plot_writes_a_png(tmp_path: Path) -> None:
    target = tmp_path / "timeline.png"
    result = invoke(str(EXAMPLE), "--plot", str(target), "--until-ms", "100000")
    assert result.exit_code == 0, result.output
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"Plot: {target}" in result.stdout.splitlines()
    assert "Ended at: 100000.0 ms" in result.stdout.splitlines()


def test_an_unwritable_plot_is_one_line_and_exit_2(tmp_path: Path) -> None:
    target = tmp_path / "missing-dir" / "t.png"
    result = invoke(str(EXAMPLE), "--plot", str(target))
    assert result.exit_code == 2
    assert result.stderr == f"error: {target}: cannot write the plot: No such file or directory\n"


def test_a_run_that_breaks_prints_the_seed_and_the_replay_command(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(mn_deploy.sim_cli, "run_scenario", explode)
    result = invoke(str(EXAMPLE), "--seed", "7")
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: the run failed at seed 7 (RuntimeError: boom); replay: mn-deploy sim run {EXAMPLE} --seed 7\n"
    )
