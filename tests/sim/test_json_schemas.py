"""The published JSON Schemas (schemas/): what scripts/write_schemas.py writes from the loader's tables, valid
draft 2020-12, met by every scenario and sweep file in the repository, and never stricter than the loader."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from sim import ScenarioError, load_scenario, read_scenario, read_sweep
from sim.json_schemas import published
from tests.sim.test_loader import BASE_PATHS, _changed, json_values

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "schemas"
SCENARIOS = sorted(
    [
        *(REPO / "examples" / "scenarios").glob("*.json"),
        *(REPO / "examples" / "sweeps" / "scenarios").glob("*.json"),
        *(REPO / "notebooks" / "scenarios").glob("*.json"),
        *(REPO / "tests" / "sim" / "scenarios").glob("*.json"),
        *(REPO / "tests" / "e2e" / "scenarios").glob("*.json"),
    ]
)
SWEEPS = sorted((REPO / "examples" / "sweeps").glob("*.json"))


def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads((SCHEMAS / name).read_text(encoding="utf-8")))


SCENARIO = validator("scenario.schema.json")
SWEEP = validator("sweep.schema.json")


def test_the_committed_schemas_are_what_the_script_writes() -> None:
    written = {path.name: path.read_text(encoding="utf-8") for path in SCHEMAS.glob("*.json")}
    assert written == published(), "run: .venv/bin/python scripts/write_schemas.py"


@pytest.mark.parametrize("name", sorted(published()))
def test_each_schema_is_valid_draft_2020_12(name: str) -> None:
    Draft202012Validator.check_schema(json.loads(published()[name]))


def _errors(schema: Draft202012Validator, document: Any) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in schema.iter_errors(document)]


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_scenario_in_the_repository_meets_the_schema_and_loads(path: Path) -> None:
    assert _errors(SCENARIO, json.loads(path.read_text(encoding="utf-8"))) == []
    read_scenario(path)


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_sweep_in_the_repository_meets_the_schema_and_loads(path: Path) -> None:
    assert _errors(SWEEP, json.loads(path.read_text(encoding="utf-8"))) == []
    read_sweep(path)


def test_enough_files_are_checked_to_mean_something() -> None:
    assert len(SCENARIOS) >= 15 and len(SWEEPS) >= 2


def test_a_file_may_name_its_schema_for_an_editor() -> None:
    document = json.loads(SCENARIOS[0].read_text(encoding="utf-8"))
    document = {"$schema": "../../schemas/scenario.schema.json", **document}
    assert _errors(SCENARIO, document) == []
    load_scenario(document, SCENARIOS[0].parent)


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"nmae": "x"}, "$"),
        ({"behaviors": {"default": {"start_msec": 5}}}, "$.behaviors.default"),
        ({"behaviors": {"default": {"start_ms": {"gamma": {}}}}}, "$.behaviors.default.start_ms"),
        ({"behaviors": {"default": {"check_failure": 1.5}}}, "$.behaviors.default.check_failure"),
        ({"actions": [{"at_ms": 0, "deploy": "v1", "promote": "x"}]}, "$.actions[0]"),
        ({"actions": [{"at_ms": 0, "promote": "k", "version": "1"}]}, "$.actions[0]"),
        ({"requirements": ["max_bad_serving =< 2"]}, "$.requirements[0]"),
        ({"requirements": ["bogus <= 2"]}, "$.requirements[0]"),
        ({"seed": -1}, "$.seed"),
    ],
)
def test_the_schema_flags_what_the_loader_refuses(change: dict[str, Any], where: str) -> None:
    """An editor using the schema points at the same mistakes the loader reports."""
    document = {**json.loads((REPO / "examples/scenarios/rolling-success.json").read_text()), **change}
    assert any(e.startswith(where) for e in _errors(SCENARIO, document)), _errors(SCENARIO, document)
    with pytest.raises(ScenarioError):
        load_scenario(document)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(BASE_PATHS), value=json_values, extra=st.booleans())
def test_fuzz_what_the_loader_takes_the_schema_takes(path: tuple[Any, ...], value: Any, extra: bool) -> None:
    """The schema is never stricter than the loader: an editor never flags a file that runs."""
    document = _changed(path, value, extra)
    try:
        load_scenario(document)
    except ScenarioError:
        return
    assert _errors(SCENARIO, document) == []
