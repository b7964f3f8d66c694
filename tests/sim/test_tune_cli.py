"""`mn-deploy sim tune`: its exit codes (0 a winner, 1 none meets the requirements, 2 bad input, 3 undecided), the
JSON shape, the plot, and `--vary`'s reading of values (fuzzed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from click.testing import Result as Invocation
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from mn_deploy.cli import main
from mn_deploy.tune_cli import parse_axis
from sim.overrides import PathError
from tests.sim.test_tuning import UPDATE, flaky

PARALLEL = f"--vary={UPDATE}max_parallel=1,2,3"
DEADLINE = f"--vary={UPDATE}healthy_deadline_ms=6000,60000"
REQUIRE = ["--require", "min_serving >= 2", "--require", "outcome == successful"]


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("tune") / "flaky.json"
    path.write_text(json.dumps(flaky()))
    return str(path)


def invoke(scenario: str, *args: str) -> Invocation:
    return CliRunner().invoke(main, ["sim", "tune", scenario, "--minimize", "duration_ms", *args, "--workers", "2"])


def test_a_winner_exits_0_with_its_bounds_the_runner_up_and_the_ratio(scenario: str, tmp_path: Path) -> None:
    plot = tmp_path / "candidates.png"
    result = invoke(scenario, PARALLEL, DEADLINE, *REQUIRE, "--bound", "0.05", "--plot", str(plot))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "Verdict: found" in lines
    assert any(
        line.startswith("Winner: max_parallel=2, healthy_deadline_ms=60000: mean duration_ms ") for line in lines
    )
    assert "Runner-up: max_parallel=1, healthy_deadline_ms=60000 (outpaced)" in lines
    runs = next(line for line in lines if line.startswith("Runs: "))
    assert "of the 960 an exhaustive sweep needs (6 candidates x 160 runs): ratio 0." in runs
    assert "Winner requirement: min_serving >= 2 | holds | 160 | 0 | [0.0000, 0.0331]" in lines
    with Image.open(plot) as image:
        assert image.format == "PNG" and image.width > 500


def test_json_gives_winner_runner_up_and_runs(scenario: str) -> None:
    result = invoke(scenario, PARALLEL, DEADLINE, *REQUIRE, "--bound", "0.05", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["winner"] == {f"{UPDATE}max_parallel": 2, f"{UPDATE}healthy_deadline_ms": 60000}
    assert report["runner_up"] == {f"{UPDATE}max_parallel": 1, f"{UPDATE}healthy_deadline_ms": 60000}
    assert report["exhaustive_runs"] == 960
    assert 0 < report["runs"] < report["exhaustive_runs"] / 2
    assert report["ratio"] == report["runs"] / report["exhaustive_runs"]
    assert {"verdict", "minimize", "vary", "requirements", "candidates", "comparison_alpha"} <= report.keys()
    candidate = report["candidates"][0]
    assert set(candidate) == {"index", "params", "label", "standing", "runs", "estimate", "outpaced_by", "requirements"}


def test_no_candidate_meeting_the_requirements_exits_1(scenario: str) -> None:
    result = invoke(scenario, f"--vary={UPDATE}max_parallel=3,4", *REQUIRE, "--json")
    assert result.exit_code == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["verdict"] == "none"
    assert report["winner"] is None
    assert report["runner_up"] is None
    assert {c["standing"] for c in report["candidates"]} == {"violated"}


def test_undecided_within_max_runs_exits_3(scenario: str) -> None:
    result = invoke(scenario, f"--vary={UPDATE}max_parallel=1,2", *REQUIRE, "--max-runs", "20", "--json")
    assert result.exit_code == 3, result.stderr
    assert json.loads(result.stdout)["verdict"] == "undecided"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([f"--vary={UPDATE}max_paralel=1,2"], "max_paralel: not in the scenario"),
        ([f"--vary={UPDATE}max_parallel"], "expected PATH=V1,V2,..."),
        ([f"--vary={UPDATE}max_parallel=1,,2"], "an empty value"),
        ([f"--vary={UPDATE}max_parallel=1,1"], "lists a value twice"),
        ([f"--vary={UPDATE}max_parallel=1", f"--vary={UPDATE}max_parallel=2"], "given twice"),
        ([f"--vary={UPDATE}max_parallel=NaN,1"], "NaN"),
        ([f"--vary={UPDATE}healthy_deadline_ms=4000"], "must be less than healthy_deadline_ms"),
        ([f"--vary={UPDATE}max_parallel=1", "--require", "reverted_in_ms <= 1"], "unknown measure"),
        ([f"--vary={UPDATE}max_parallel=1", "--set", "nope.x=1"], "--set nope.x"),
    ],
)
def test_bad_input_is_one_line_and_exits_2(scenario: str, args: list[str], message: str) -> None:
    result = invoke(scenario, *args, *([] if "--require" in args else REQUIRE))
    assert result.exit_code == 2, result.stdout
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("error: ") and message in result.stderr


def test_minimizing_a_measure_that_is_not_a_number_is_a_usage_error(scenario: str) -> None:
    result = CliRunner().invoke(
        main, ["sim", "tune", scenario, f"--vary={UPDATE}max_parallel=1", "--minimize", "outcome"]
    )
    assert result.exit_code == 2
    assert "'outcome' is not one of" in result.stderr


def test_vary_reads_values_as_json_else_text() -> None:
    assert parse_axis("a.b=1,2.5,true") == ("a.b", [1, 2.5, True])
    assert parse_axis("s=rolling,canary") == ("s", ["rolling", "canary"])
    assert parse_axis('s="a,b",3') == ("s", ["a,b", 3])
    assert parse_axis('n=[1,2],{"k":3}') == ("n", [[1, 2], {"k": 3}])
    assert parse_axis("m=1,canary") == ("m", [1, "canary"])


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300) | st.from_regex(r"[a-z.]{1,20}=[\[\]{}\",0-9a-zA-Z.eE+-]{0,200}", fullmatch=True))
def test_vary_reads_any_text_or_refuses_it_with_a_path_error(text: str) -> None:
    try:
        path, values = parse_axis(text)
    except PathError as error:
        assert "\n" not in error.problem
        return
    assert path and values


def test_vary_refuses_json_nested_too_deep() -> None:
    with pytest.raises(PathError, match="VALUE"):
        parse_axis("x=" + "[" * 5000 + "]" * 5000)
