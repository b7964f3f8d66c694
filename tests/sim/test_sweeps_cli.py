"""`mn-deploy sim sweep FILE...`: several sweep files compared in one summary, each with its own output files."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mn_deploy.cli import main
from tests.sim.test_sweep import MAX_PARALLEL, write_sweep


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, ["sim", "sweep", *args])


def two_sweeps(tmp_path: Path) -> tuple[Path, Path]:
    """sweep.json (2 x 2 points) and narrow.json (its scenario, max_parallel 1 or 3 only), 3 runs a point."""
    wide = write_sweep(tmp_path, runs=3)
    narrow = tmp_path / "narrow.json"
    document = json.loads(wide.read_text())
    narrow.write_text(json.dumps({**document, "grid": {MAX_PARALLEL: [1, 3]}}))
    return wide, narrow


def test_several_sweeps_are_compared_in_one_summary_and_each_gets_its_files(tmp_path: Path) -> None:
    wide, narrow = two_sweeps(tmp_path)
    out, summary = tmp_path / "runs-{sweep}.csv", tmp_path / "{sweep}-summary.json"

    result = invoke(str(wide), str(narrow), "--workers", "2", "--out", str(out), "--summary", str(summary))

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:2] == ["Sweeps: 2", "Workers: 2 processes"]
    assert lines[3:6] == [
        "# Sweep: sweep | scenario | runs | seed | failed runs | files",
        f"Sweep: sweep | {tmp_path}/scenarios/tiny.json | 3 x 4 points | 11 | 0 | "
        f"{tmp_path}/runs-sweep.csv, {tmp_path}/sweep-summary.json",
        f"Sweep: narrow | {tmp_path}/scenarios/tiny.json | 3 x 2 points | 11 | 0 | "
        f"{tmp_path}/runs-narrow.csv, {tmp_path}/narrow-summary.json",
    ]
    # every table holds both sweeps' rows, each naming its sweep first
    assert "# Point: sweep | point | parameters | runs | errors" in lines
    assert "Point: sweep | 3 | max_parallel=2, start_failure=0.5 | 3 | 0" in lines
    assert "Point: narrow | 1 | max_parallel=3 | 3 | 0" in lines
    assert "# Outcome: sweep | point | outcome | share | interval" in lines
    assert {line.split(" | ")[0] for line in lines if line.startswith("Metric: ")} == {
        "Metric: sweep",
        "Metric: narrow",
    }
    # each sweep's files are those it writes alone, and --json prints its summary, one line a sweep
    assert len(list(csv.reader((tmp_path / "runs-sweep.csv").open()))) == 1 + 4 * 3
    assert len(list(csv.reader((tmp_path / "runs-narrow.csv").open()))) == 1 + 2 * 3
    printed = invoke(str(wide), str(narrow), "--workers", "1", "--json")
    assert printed.exit_code == 0, printed.output
    alone = invoke(str(narrow), "--workers", "1", "--json")
    assert [json.loads(line) for line in printed.stdout.splitlines()] == [
        json.loads((tmp_path / "sweep-summary.json").read_text()),
        json.loads((tmp_path / "narrow-summary.json").read_text()),
    ]
    assert json.loads(alone.stdout) == json.loads((tmp_path / "narrow-summary.json").read_text())


def test_one_file_may_name_its_outputs_after_the_sweep(tmp_path: Path) -> None:
    wide = write_sweep(tmp_path, runs=1)

    result = invoke(str(wide), "--workers", "1", "--out", str(tmp_path / "{sweep}.csv"))

    assert result.exit_code == 0, result.output
    assert f"Rows: {tmp_path}/sweep.csv" in result.stdout.splitlines()
    assert (tmp_path / "sweep.csv").exists()


def test_an_output_without_the_sweep_name_is_refused_before_anything_runs(tmp_path: Path) -> None:
    wide, narrow = two_sweeps(tmp_path)
    for option, name in (("--out", "runs.csv"), ("--summary", "summary.json"), ("--plot", "sweep.png")):
        result = invoke(str(wide), str(narrow), option, str(tmp_path / name))

        stem, suffix = name.split(".")
        expected = f"{option} {tmp_path / name}: with several sweep files, put {{sweep}} in it "
        assert result.stderr == f"error: {expected}({tmp_path}/{stem}-{{sweep}}.{suffix})\n"
        assert (result.exit_code, result.stdout) == (2, "")
        assert not (tmp_path / name).exists()


def test_a_bad_file_is_named_and_no_sweep_runs(tmp_path: Path) -> None:
    wide = write_sweep(tmp_path, runs=1)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**json.loads(wide.read_text()), "runs": 0}))

    result = invoke(str(wide), str(bad), "--out", str(tmp_path / "runs-{sweep}.csv"))

    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith(f"error: {bad}: $.runs") and result.stderr.count("\n") == 1
    assert not (tmp_path / "runs-sweep.csv").exists()  # the good one, before it, did not run either


def test_two_sweeps_of_one_name_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = write_sweep(tmp_path / "a", runs=1)
    shutil.copytree(tmp_path / "a" / "scenarios", tmp_path / "b" / "scenarios")
    second = shutil.copy(first, tmp_path / "b" / "sweep.json")

    result = invoke(str(first), str(second))

    message = f"error: {second}: a sweep is named after its file's stem, and {first} is named 'sweep' too\n"
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", message)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.binary(min_size=1, max_size=300)
    .filter(lambda raw: b"\x00" not in raw and b"/" not in raw)
    .map(os.fsdecode)  # as Python reads a command line's bytes: undecodable ones as surrogates
    .filter(lambda name: "{sweep}" not in name and name not in (".", ".."))  # those two name directories too
)
def test_fuzz_an_output_name_without_the_sweep_name_is_one_line(tmp_path: Path, name: str) -> None:
    """Any file name a shell can pass (bytes without NUL; `/` would make it a directory), huge, not UTF-8, with
    line breaks or escape sequences: refused in one line."""
    wide, narrow = two_sweeps(tmp_path)
    result = invoke(str(wide), str(narrow), "--out", str(tmp_path / name))

    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith("error: --out ") and result.stderr.count("\n") == 1
