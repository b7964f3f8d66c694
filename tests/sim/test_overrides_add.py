"""`--set` and sweep grids may add a value the file lacks where the scenario format defines one (a policy field
above all), and still refuse, in one line, a path that cannot exist."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mn_deploy.cli import main
from sim import ScenarioError, load_scenario, read_scenario, read_sweep, run_scenario
from sim.overrides import PathError, with_overrides
from sim.scenario import read_scenario_document
from tests.sim.conftest import EXAMPLES

ROLLING = EXAMPLES / "rolling-success.json"
STRATEGY = "manifests.v2.policies.update.strategy"


def rolling() -> dict[str, Any]:
    document: dict[str, Any] = read_scenario_document(ROLLING)
    assert "strategy" not in document["manifests"]["v2"]["policies"]["update"]
    return document


def statuses(document: Any) -> list[str]:
    return [d["status"] for d in run_scenario(load_scenario(document), seed=1).to_json()["deployments"]]


def test_adding_a_policy_field_the_file_lacks_changes_the_run() -> None:
    assert statuses(rolling()) == ["successful", "successful"]
    canary = with_overrides(rolling(), {STRATEGY: "canary"})
    assert canary["manifests"]["v2"]["policies"]["update"]["strategy"] == "canary"
    assert statuses(canary) == ["successful", "awaiting_promotion"]


def test_missing_policy_sections_are_made_on_the_way() -> None:
    document = rolling()
    del document["manifests"]["v2"]["policies"]
    changed = with_overrides(document, {STRATEGY: "canary", "manifests.v2.policies.restart.attempts": 0})
    assert changed["manifests"]["v2"]["policies"] == {"update": {"strategy": "canary"}, "restart": {"attempts": 0}}
    assert "policies" not in document["manifests"]["v2"]


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        ("behaviors.v2.start_failure", 0.5, ("behaviors", "v2", "start_failure")),
        ("behaviors.default.agents.worker-3.start_ms", 900, ("behaviors", "default", "agents", "worker-3", "start_ms")),
        ("actions.1.overrides.max_parallel", 1, ("actions", 1, "overrides", "max_parallel")),
        ("until_ms", 30000, ("until_ms",)),
    ],
)
def test_other_values_the_format_defines_may_be_added(path: str, value: Any, where: tuple[Any, ...]) -> None:
    document = rolling()
    document.pop("behaviors", None)
    node: Any = with_overrides(document, {path: value})
    for part in where:
        node = node[part]
    assert node == value
    load_scenario(with_overrides(document, {path: value}))


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        (
            "manifests.v2.policies.update.strategi",
            'not in the scenario (no "strategi" at $.manifests.v2.policies.update)',
        ),
        ("manifests.v2.policies.updates.strategy", 'not in the scenario (no "updates" at $.manifests.v2.policies)'),
        ("manifests.v9.policies.update.strategy", 'not in the scenario (no "v9" at $.manifests)'),
        (
            "manifests.v2.policies.update.max_parallel.x",
            'not in the scenario (no "x" at $.manifests.v2.policies.update',
        ),
        ("manifests.v2.nodes.7.count", 'not in the scenario (no "7" at $.manifests.v2.nodes)'),
        ("manifests.v2.labels", 'not in the scenario (no "labels" at $.manifests.v2)'),
        ("behaviors.v9.start_ms", 'not in the scenario (no "v9" at $.behaviors)'),
        ("behaviors.v2.start_msec", 'not in the scenario (no "start_msec" at $.behaviors.v2)'),
        ("actions.0.reason", 'not in the scenario (no "reason" at $.actions[0])'),
        ("nmae", 'not in the scenario (no "nmae" at $)'),
    ],
)
def test_a_path_that_cannot_exist_is_still_refused(path: str, problem: str) -> None:
    document = rolling()
    document["behaviors"] = {"v2": {"ready_ms": 10}}
    document["actions"].insert(0, {"at_ms": 0, "promote": "agent-api"})
    with pytest.raises(PathError) as raised:
        with_overrides(document, {path: 1})
    assert raised.value.path == path and raised.value.problem.startswith(problem)


def test_a_deploy_alone_takes_overrides() -> None:
    document = rolling()
    document["actions"].append({"at_ms": 9e9, "promote": "agent-api"})
    with pytest.raises(PathError, match=r'no "overrides" at \$\.actions\[2\]'):
        with_overrides(document, {"actions.2.overrides.strategy": "canary"})


def test_sim_run_set_adds_a_policy_field_and_refuses_a_typo_in_one_line() -> None:
    runner = CliRunner()
    added = runner.invoke(main, ["sim", "run", str(ROLLING), "--set", f"{STRATEGY}=canary", "--json"])
    assert added.exit_code == 0, added.stderr
    assert [d["status"] for d in json.loads(added.stdout)["deployments"]] == ["successful", "awaiting_promotion"]
    typo = runner.invoke(main, ["sim", "run", str(ROLLING), "--set", "manifests.v2.policies.update.strategi=canary"])
    assert (typo.exit_code, typo.stdout) == (2, "")
    assert typo.stderr == (
        f"error: {ROLLING}: --set manifests.v2.policies.update.strategi: "
        'not in the scenario (no "strategi" at $.manifests.v2.policies.update)\n'
    )


def test_a_sweep_grid_may_try_a_strategy_the_file_lacks(tmp_path: Path) -> None:
    sweep_file = tmp_path / "strategies.json"
    scenario = {"scenario": str(ROLLING), "runs": 1, "grid": {STRATEGY: ["rolling", "canary"]}}
    sweep_file.write_text(json.dumps(scenario))
    sweep = read_sweep(sweep_file)
    assert [statuses(sweep.document(p))[-1] for p in sweep.points] == ["successful", "awaiting_promotion"]
    sweep_file.write_text(json.dumps({**scenario, "grid": {"manifests.v2.policies.update.strategi": ["canary"]}}))
    with pytest.raises(ScenarioError) as raised:
        read_sweep(sweep_file)
    assert str(raised.value) == (
        '$.grid["manifests.v2.policies.update.strategi"]: '
        'not in the scenario (no "strategi" at $.manifests.v2.policies.update)'
    )


PARTS = st.sampled_from(
    ["manifests", "v1", "v2", "policies", "update", "restart", "strategy", "behaviors", "default", "agents", "0"]
) | st.text(max_size=6)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=st.lists(PARTS, min_size=1, max_size=7), value=st.none() | st.floats() | st.text(max_size=4))
def test_fuzz_any_path_sets_a_copy_or_is_refused_and_the_result_loads_or_names_its_problems(
    parts: list[str], value: Any
) -> None:
    original = read_scenario(ROLLING) and rolling()
    before = copy.deepcopy(original)
    try:
        changed = with_overrides(original, {".".join(parts): value})
    except PathError as error:
        assert "\n" not in str(error)
        return
    finally:
        assert original == before
    try:
        load_scenario(changed)
    except ScenarioError as error:
        assert all(p.path.startswith("$") and "\n" not in str(p) for p in error.problems)
