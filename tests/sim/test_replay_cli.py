"""`mn-deploy sim replay TRACE`: the parity line, the first divergence as a block, `--json`, and the exit codes
(0 identical, 1 diverged, 2 not a trace it can replay: one line naming where)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mn_deploy.cli import main
from tests.sim.conftest import EXAMPLES

SCENARIO = EXAMPLES / "rolling-bad-version-auto-revert.json"


def replay(*args: str) -> Result:
    return CliRunner().invoke(main, ["sim", "replay", *args])


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    """A trace written by `sim run --trace`, as a user makes one."""
    path = tmp_path / "trace.json"
    ran = CliRunner().invoke(main, ["sim", "run", str(SCENARIO), "--json", "--trace", str(path)])
    assert ran.exit_code == 0, ran.output
    return path


def test_an_identical_replay_prints_one_line_and_exits_0(trace: Path) -> None:
    result = replay(str(trace))
    decisions = sum(len(d["events"]) for d in json.loads(trace.read_text())["deployments"])
    assert result.exit_code == 0, result.output
    assert result.output == f"parity: identical decisions ({decisions} compared), max time skew 0 ms\n"


def test_json_is_the_parity_with_the_replay_result(trace: Path) -> None:
    result = replay(str(trace), "--json")
    assert result.exit_code == 0
    parity = json.loads(result.output)
    assert parity["identical"] is True and parity["divergence"] is None and parity["max_skew_ms"] == 0.0
    assert [d["status"] for d in parity["result"]["deployments"]] == ["successful", "failed", "successful"]


def diverged(trace: Path) -> None:
    """Version 2's first instance now comes up and passes its checks instead of crashing until it fails: the
    verdict recorded for it ("unhealthy") does not come."""
    data = json.loads(trace.read_text())
    failing = data["deployments"][1]["deployment_id"] + ".worker-0.0"
    row = next(i for i in data["instances"] if i["instance_id"] == failing)
    placed, running = row["facts"][:2]
    row["facts"] = [
        placed,
        running,
        {"t_ms": running["t_ms"] + 200.0, "kind": "ready"},
        {"t_ms": running["t_ms"] + 400.0, "kind": "check_passing", "check": "api:0"},
    ]
    trace.write_text(json.dumps(data))


def test_a_divergence_is_one_block_and_exits_1(trace: Path) -> None:
    diverged(trace)
    result = replay(str(trace))
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith("parity: diverged at ") and "in deployment dep_agent-api_2, decision " in lines[0]
    assert lines[1] == "  why:      the replay decided otherwise"
    assert lines[2].startswith('  recorded: {"agent_id": "worker-0", "instance_id": "dep_agent-api_2.worker-0.0"')
    assert '"type": "deployment_instance_unhealthy"' in lines[2]
    assert lines[3].startswith("  replayed: {")
    assert re.fullmatch(r"  same:     \d+ decisions, up to each deployment's first difference", lines[4])
    assert len(lines) == 5


def test_json_of_a_divergence_exits_1(trace: Path) -> None:
    diverged(trace)
    result = replay(str(trace), "--json")
    assert result.exit_code == 1
    divergence = json.loads(result.output)["divergence"]
    assert divergence["deployment"] == "dep_agent-api_2"
    assert divergence["recorded"]["type"] == "deployment_instance_unhealthy"


def test_an_incomplete_trace_warns_on_stderr(trace: Path) -> None:
    data = json.loads(trace.read_text())
    data["complete"] = False
    trace.write_text(json.dumps(data))
    result = CliRunner().invoke(main, ["sim", "replay", str(trace)])
    assert result.exit_code == 0
    assert result.stderr.startswith(f"warning: {trace}: the trace is not complete")
    assert result.stdout.startswith("parity: identical decisions")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read the file: No such file or directory"),
        ("{", "not valid JSON: Expecting property name enclosed in double quotes (line 1, column 2)"),
        ('{"format": NaN}', "holds a number that is not finite (NaN, Infinity, or over 1.8e308 in size)"),
        ("[" * 10_000, "nested more than 64 levels deep"),
        ('{"format": 2}', "$.format: trace format 2 is not supported (this reads 1)"),
        ("[]", "$: a trace is a JSON object"),
    ],
)
def test_bad_input_is_one_line_and_exits_2(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "trace.json"
    if content is not None:
        path.write_text(content)
    result = CliRunner().invoke(main, ["sim", "replay", str(path)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == f"error: {path}: {message}\n"


def test_a_trace_refused_by_the_replay_reader_names_the_path(trace: Path) -> None:
    data = json.loads(trace.read_text())
    data["instances"][0]["placed_ms"] = "soon"
    trace.write_text(json.dumps(data))
    result = CliRunner().invoke(main, ["sim", "replay", str(trace)])
    assert result.exit_code == 2
    assert result.stderr == f"error: {trace}: $.instances[0].placed_ms: must be a finite number of milliseconds\n"


def test_the_skew_is_printed_in_plain_milliseconds(trace: Path) -> None:
    """The last fact of the run (the reverted version's last check) comes 2.5 s late: same decisions, later."""
    data = json.loads(trace.read_text())
    last = max((i for i in data["instances"] if i["facts"]), key=lambda i: i["facts"][-1]["t_ms"])
    last["facts"][-1]["t_ms"] += 2500.0
    trace.write_text(json.dumps(data))
    result = replay(str(trace))
    assert result.exit_code == 0, result.output
    assert result.output.endswith(", max time skew 2500 ms\n")
