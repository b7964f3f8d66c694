"""`mn-deploy sim calibrate` through click's CliRunner: the table of what was fitted, `--json`, the behaviors file,
and one-line errors with exit 2 for any bad input, which writes nothing (the trace parser fuzzed with hypothesis)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mn_deploy.cli import main
from sim import calibrate, load_scenario
from sim.fitting import clopper_pearson
from tests.awkward import nested
from tests.sim.test_calibrate import TRUTH, handmade, manifest, traced

PLAIN = {"MN_CLI_OUTPUT": "plain"}


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, ["sim", "calibrate", *args], env=PLAIN)


@pytest.fixture(scope="module")
def trace_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("traces") / "trace.json"
    path.write_text(json.dumps(traced({"v1": TRUTH})))
    return path


def test_the_table_says_what_was_fitted_from_how_many_observations_and_the_file_is_a_behaviors_object(
    trace_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "behaviors.json"
    result = invoke(str(trace_file), "--out", str(out))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[:5] == [
        "Traces: 1",
        f"Instances: {len(json.loads(trace_file.read_text())['instances'])}",
        "By: manifest",
        "Intervals: 95%; fields seen fewer than 5 times are left unset",
        f"Behaviors: {out}",
    ]
    assert lines[5] == "# Fit: group | field | family | estimate [95%] | n | KS p | note"
    rows = [line.removeprefix("Fit: ").split(" | ") for line in lines[6:]]
    assert [row[:3] for row in rows] == [
        ["k@1", "start_ms", "lognormal"],
        ["k@1", "ready_ms", "const"],
        ["k@1", "check_ms", "uniform"],
        ["k@1", "start_failure", "probability"],
        ["k@1", "check_failure", "probability"],
        ["k@1", "crash_after_ms", "exponential"],
    ]
    starts = calibrate([json.loads(trace_file.read_text())]).observations["k@1"]
    low, high = clopper_pearson(starts.start_failures, starts.starts)
    share = starts.start_failures / starts.starts
    assert rows[3][3:] == [
        f"p={share:.3g} [{low:.3g}, {high:.3g}]",
        str(starts.starts),
        "-",
        f"{starts.start_failures} of {starts.starts}",
    ]
    assert rows[0][3].startswith("median=1") and " sigma=0." in rows[0][3] and float(rows[0][5]) >= 0.05
    behaviors = json.loads(out.read_text())
    load_scenario(
        {
            "name": "rehearsal",
            "manifests": {"k@1": manifest("w:1", {"worker": 300})},
            "behaviors": behaviors,
            "actions": [{"at_ms": 0, "deploy": "k@1"}],
        }
    )
    assert behaviors["k@1"]["ready_ms"] == 200


def test_json_prints_the_fits_and_behaviors_as_one_document(trace_file: Path) -> None:
    result = invoke(str(trace_file), str(trace_file), "--json", "--by", "agent")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["by"] == "agent" and set(document["behaviors"]) == {"default"}
    fit = document["fits"][0]
    assert set(fit) == {"manifest", "agent", "field", "family", "parameters", "n", "ks_p", "intervals", "value", "note"}
    assert fit["manifest"] is None and fit["agent"].startswith("worker-")


def test_too_few_observations_are_listed_unset(tmp_path: Path) -> None:
    path = tmp_path / "small.json"
    path.write_text(json.dumps(handmade((0, "placed"), (100, "running"), copies=3)))
    result = invoke(str(path))
    assert result.exit_code == 0, result.output
    assert "Fit: k@1 | start_ms | unset | - | 3 | - | too few values (3 < 5)" in result.output.splitlines()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read the file"),
        ("{not json", "not valid JSON"),
        ('{"format": NaN}', "holds a number that is not finite"),
        (json.dumps(nested(200)), "nested"),
        (json.dumps({"format": 2}), "$.format: trace format 2 is not supported (this reads 1)"),
        (json.dumps({**handmade((0, "placed")), "versions": [{"key": 1}]}), "$.versions[0].key: must be a string"),
        (json.dumps({**handmade((0, "placed")), "instances": []}), "nothing to fit"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    trace_file: Path, tmp_path: Path, content: str | None, message: str
) -> None:
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    out = tmp_path / "behaviors.json"
    good = [] if message == "nothing to fit" else [str(trace_file)]
    result = invoke(*good, str(bad), "--out", str(out))
    assert result.exit_code == 2
    assert result.stdout == "" and len(result.stderr.splitlines()) == 1 and result.stderr.startswith("error: ")
    assert message in result.stderr
    if content is not None and message != "nothing to fit":
        assert result.stderr.startswith(f"error: {bad}: ")
    assert not out.exists()


def test_usage_errors_are_one_line_too(trace_file: Path) -> None:
    for args in ([], [str(trace_file), "--by", "node"]):
        result = invoke(*args)
        assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1 and result.stderr.startswith("error: ")


def test_an_output_that_cannot_be_written_is_one_line(trace_file: Path, tmp_path: Path) -> None:
    result = invoke(str(trace_file), "--out", str(tmp_path / "missing" / "behaviors.json"))
    assert result.exit_code == 2 and result.stderr.startswith("error: ") and "cannot write" in result.stderr


_TEXT = st.text(max_size=200) | st.just("\ud800") | st.just("[" * 5000) | st.just('{"format": 1e999}')
_VALUES: Any = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(_TEXT, _VALUES.map(lambda value: json.dumps(value, allow_nan=True))))
def test_fuzz_any_file_is_a_calibration_or_one_line(tmp_path: Path, content: str) -> None:
    path = tmp_path / "fuzz.json"
    path.write_text(content, encoding="utf-8", errors="surrogatepass")
    result = invoke(str(path), "--json")
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and len(result.stderr.splitlines()) == 1 and result.stderr.startswith("error: ")
