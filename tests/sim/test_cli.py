"""`mn-deploy sim run` through click's CliRunner: output modes, plots, and one-line errors with exit 2 for any bad
input (files, `--set` values and flags, and sweep files), which write nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import mn_deploy.sim_cli
from mn_deploy.cli import main
from mn_deploy_core.limits import MAX_DEPTH
from sim import read_scenario, run_scenario
from tests.awkward import nested
from tests.sim.conftest import EXAMPLES
from tests.sim.test_sweep import MAX_PARALLEL, write_sweep

EXAMPLE = EXAMPLES / "canary-manual-promote.json"
REPO = Path(__file__).resolve().parents[2]
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
        headers = [line for line in lines if line.startswith("#")]
        assert headers == [  # each table's columns, named once above its rows
            "# Deployment: id | version | status | description | duration",
            "# Version: key | version | manifest | created by | stable",
            "# Metric: name | value",
            "# Refused: at | action | message",
        ]
        for header in headers:
            label = header.removeprefix("# ").split(":")[0]
            rows = lines[lines.index(header) + 1 :]
            assert rows and rows[0].startswith(f"{label}: ")
            assert rows[0].count(" | ") == header.count(" | ")


def test_a_terminal_gets_rich_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mn_deploy.sim_cli, "plain_output", lambda: False)
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

    monkeypatch.setattr(mn_deploy.sim_cli.Simulation, "run", explode)
    result = invoke(str(EXAMPLE), "--seed", "7")
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: the run failed at seed 7 (RuntimeError: boom); replay: mn-deploy sim run {EXAMPLE} --seed 7\n"
    )


def test_unknown_policy_keys_are_warned_about_one_line_each_and_the_run_goes_on(tmp_path: Path) -> None:
    doc = json.loads(EXAMPLE.read_text())
    doc["manifests"]["v2"]["policies"]["update"]["max_paralel"] = 4
    doc["manifests"]["v2"]["policies"]["restrat"] = {"attempts": 1}
    result = invoke(write(tmp_path, doc), "--json")
    assert result.exit_code == 0
    path = tmp_path / "scenario.json"
    assert result.stderr.splitlines() == [
        f"warning: {path}: $.manifests.v2.policies.update.max_paralel: unknown policy key, ignored",
        f"warning: {path}: $.manifests.v2.policies.restrat: unknown policy key, ignored",
    ]
    assert json.loads(result.stdout)["scenario"] == "canary-manual-promote"


# ---- bad input of any kind: one line, exit 2, nothing written ---------------------------------------

NOT_FINITE = "holds a number that is not finite (NaN, Infinity, or over 1.8e308 in size)"
TOO_DEEP = "nested more than 64 levels deep"
TOO_MANY = 'node "worker": count must be at most 100000'


def example_with(change: str) -> str:
    """The example's text after one change (a NaN is written as Python writes it, `NaN`)."""
    doc = json.loads(EXAMPLE.read_text())
    worker = doc["manifests"]["v1"]["nodes"][0]
    if change == "NaN in a manifest":
        worker["config"]["ratio"] = float("nan")
    elif change == "huge count":
        worker["count"] = 10**9
    else:
        worker["config"]["deep"] = nested(MAX_DEPTH)
    return json.dumps(doc)


def files_in(path: Path) -> set[Path]:
    return set(path.rglob("*"))


@pytest.mark.parametrize(
    ("text", "args", "message"),
    [
        ("[" * 100_000, [], f"{{path}}: {TOO_DEEP}"),
        (example_with("deep config"), [], f"{{path}}: {TOO_DEEP}"),
        (example_with("NaN in a manifest"), [], f"{{path}}: {NOT_FINITE}"),
        (example_with("huge count"), [], f"{{path}}: $.manifests.v1: {TOO_MANY}"),
        (EXAMPLE.read_text(), ["--set", "seed=NaN"], f"{{path}}: --set seed: VALUE {NOT_FINITE}"),
        (
            EXAMPLE.read_text(),
            ["--set", "seed=" + "[" * 100_000],
            f"{{path}}: --set seed: VALUE {TOO_DEEP}",
        ),
        (EXAMPLE.read_text(), ["--until-ms", "nan"], "Invalid value for '--until-ms': 'nan' is not a finite number."),
        (EXAMPLE.read_text(), ["--until-ms", "inf"], "Invalid value for '--until-ms': 'inf' is not a finite number."),
        (EXAMPLE.read_text(), ["--seed", "-1"], "Invalid value for '--seed': -1 is not in the range x>=0."),
    ],
)
def test_run_refuses_bad_input_in_one_line_with_exit_2_and_writes_nothing(
    tmp_path: Path, text: str, args: list[str], message: str
) -> None:
    path = write(tmp_path, text)
    before = files_in(tmp_path)
    result = invoke(path, "--plot", str(tmp_path / "plot.png"), "--json", *args)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"error: {message.format(path=path)}\n"
    assert files_in(tmp_path) == before


def sweep_with(tmp_path: Path, change: str) -> Path:
    """A sweep file of tests.sim.test_sweep after one change to it or to its scenario."""
    if change == "NaN in the grid":
        return write_sweep(tmp_path, grid={MAX_PARALLEL: [1, float("nan")]})
    if change == "deep grid value":
        return write_sweep(tmp_path, grid={MAX_PARALLEL: [nested(MAX_DEPTH)]})
    if change == "huge count in the grid":
        return write_sweep(tmp_path, grid={"manifests.v2.nodes.0.count": [3, 10**6]})
    path = write_sweep(tmp_path)
    (tmp_path / "scenarios" / "tiny.json").write_text("[" * 100_000)
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("NaN in the grid", f"{{path}}: {NOT_FINITE}"),
        ("deep grid value", f"{{path}}: {TOO_DEEP}"),
        (
            "huge count in the grid",
            f"{{path}}: $.scenario: {{scenario}} at count=1000000: $.manifests.v2: {TOO_MANY}",
        ),
        ("deep scenario", f"{{path}}: $.scenario: {{scenario}}: {TOO_DEEP}"),
    ],
)
def test_sweep_refuses_bad_input_in_one_line_with_exit_2_and_writes_nothing(
    tmp_path: Path, change: str, message: str
) -> None:
    path = sweep_with(tmp_path, change)
    before = files_in(tmp_path)
    outputs = [f"--{name}={tmp_path / name}" for name in ("out", "summary", "plot")]
    result = CliRunner().invoke(main, ["sim", "sweep", str(path), "--workers", "1", *outputs])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"error: {message.format(path=path, scenario=tmp_path / 'scenarios' / 'tiny.json')}\n"
    assert files_in(tmp_path) == before


def test_json_too_deep_for_python_is_one_line_from_a_real_process(tmp_path: Path) -> None:
    """Python's own parser raises RecursionError on this file; the user sees one line and no traceback."""
    path = write(tmp_path, "[" * 100_000)
    plot = tmp_path / "plot.png"
    command = [sys.executable, "-c", "from mn_deploy.cli import main; main()", "sim", "run", path, "--plot", str(plot)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"error: {path}: {TOO_DEEP}\n"
    assert not plot.exists()
