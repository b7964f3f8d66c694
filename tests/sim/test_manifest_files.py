"""Manifests by path (docs/scenarios.md): `{"file": "..."}` reads a bundle's manifest, relative to the scenario
file (or to `base` for a document); a file that cannot be read or is no valid manifest is one line naming the
JSONPath and the file, and `sim run` then exits 2 having written nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings

from mn_deploy.cli import main
from sim import ScenarioError, load_scenario, read_scenario, run_scenario
from sim.sweep import load_sweep
from tests.awkward import awkward_values, unfit
from tests.sim.conftest import EXAMPLES

BUNDLES = EXAMPLES.parent / "bundles"
HELLO = EXAMPLES / "hello-bundle-broken-health.json"


def scenario(tmp_path: Path, manifests: dict[str, Any]) -> Path:
    """A scenario file in `tmp_path` deploying `v1`."""
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps({"name": "by-file", "manifests": manifests, "actions": [{"at_ms": 0, "deploy": "v1"}]}))
    return path


def test_a_manifest_by_file_is_the_file_as_if_pasted(tmp_path: Path) -> None:
    by_file = read_scenario(HELLO)
    pasted = json.loads(HELLO.read_text())
    pasted["manifests"] = {
        name: json.loads((BUNDLES / "hello" / f"{name}.json").read_text()) for name in ("v1", "v2-broken")
    }
    inline = load_scenario(pasted)
    assert by_file.documents == inline.documents
    assert run_scenario(by_file).dumps() == run_scenario(inline).dumps()


def test_a_relative_path_is_relative_to_the_scenario_file_and_a_document_to_base(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "v1.json").write_text((BUNDLES / "hello" / "v1.json").read_text())
    path = scenario(tmp_path, {"v1": {"file": "m/v1.json"}})
    assert read_scenario(path).manifests["v1"].key == "hello"
    document = json.loads(path.read_text())
    assert load_scenario(document, base=tmp_path).manifests["v1"].key == "hello"
    with pytest.raises(ScenarioError, match=r"^\$\.manifests\.v1\.file: m/v1\.json: cannot read the file"):
        load_scenario(document)  # the working directory has no m/v1.json


@pytest.mark.parametrize(
    ("entry", "content", "message"),
    [
        (
            {"file": "missing.json"},
            None,
            "$.manifests.v1.file: {dir}/missing.json: cannot read the file: No such file or directory",
        ),
        (
            {"file": "m.json"},
            "{",
            "$.manifests.v1.file: {dir}/m.json: not valid JSON: Expecting property name enclosed in double quotes",
        ),
        (
            {"file": "m.json"},
            '{"nodes": NaN}',
            "$.manifests.v1.file: {dir}/m.json: holds a number that is not finite",
        ),
        (
            {"file": "m.json"},
            '{"job_type": "service"}',
            "$.manifests.v1.file: {dir}/m.json: nodes must be a non-empty list; deployment key is missing",
        ),
        ({"file": "m.json", "count": 3}, "{}", "$.manifests.v1.count: unknown key"),
        ({"file": 7}, None, "$.manifests.v1.file: must be a non-blank string"),
        ({"file": "."}, None, "$.manifests.v1.file: {dir}: cannot read the file: Is a directory"),
    ],
)
def test_a_bad_file_is_one_line_naming_the_path_and_the_file(
    tmp_path: Path, entry: dict[str, Any], content: str | None, message: str
) -> None:
    if content is not None:
        (tmp_path / "m.json").write_text(content)
    path = scenario(tmp_path, {"v1": entry})
    with pytest.raises(ScenarioError) as raised:
        read_scenario(path)
    assert "\n" not in str(raised.value)
    assert str(raised.value).startswith(message.format(dir=tmp_path))


def test_sim_run_reads_files_and_sets_values_inside_them(tmp_path: Path) -> None:
    ran = CliRunner().invoke(main, ["sim", "run", str(HELLO), "--json", "--set", "manifests.v1.nodes.0.count=3"])
    assert ran.exit_code == 0, ran.output
    first = json.loads(ran.output)["deployments"][0]
    assert first["counters"]["desired_total"] == 3


def test_sim_run_with_a_missing_file_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    path = scenario(tmp_path, {"v1": {"file": "gone.json"}})
    trace = tmp_path / "trace.json"
    ran = CliRunner().invoke(main, ["sim", "run", str(path), "--trace", str(trace)])
    assert ran.exit_code == 2
    assert ran.stdout == ""
    assert ran.stderr == (
        f"error: {path}: $.manifests.v1.file: {tmp_path}/gone.json: cannot read the file: No such file or directory\n"
    )
    assert not trace.exists()


def test_a_sweep_reads_its_scenario_files_relative_to_the_scenario(tmp_path: Path) -> None:
    sweep = load_sweep(
        {"scenario": str(HELLO), "runs": 2, "grid": {"manifests.v1.policies.update.max_parallel": [1, 2]}},
        name="s",
    )
    assert sweep.document(sweep.points[1])["manifests"]["v1"]["policies"]["update"]["max_parallel"] == 2
    assert sweep.document(sweep.points[1])["manifests"]["v1"]["deployment"] == {"key": "hello"}


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(value=awkward_values)
def test_fuzz_any_file_content_loads_or_is_one_line(tmp_path: Path, value: Any) -> None:
    (tmp_path / "m.json").write_text(json.dumps(value), encoding="utf-8")
    path = scenario(tmp_path, {"v1": {"file": "m.json"}})
    try:
        read_scenario(path)
    except ScenarioError as error:
        assert "\n" not in str(error)
        assert str(error).startswith("$.manifests.v1")
    else:
        assert not unfit(value)
