"""The scenario loader: a valid file loads; every problem is a ScenarioError naming its JSONPath; nothing
else ever escapes, whatever the JSON (fuzzed with hypothesis)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim import ScenarioError, load_scenario, read_scenario
from tests.awkward import awkward_values, replaced, subtree_paths, unfit
from tests.sim.conftest import EXAMPLES

Doc = dict[str, Any]


def manifest(image: str = "w:1") -> Doc:
    return {
        "job_type": "service",
        "deployment": {"key": "api"},
        "nodes": [
            {
                "node_id": "worker",
                "agent_type": "executor",
                "count": 3,
                "config": {"image": image},
                "services": [{"name": "api", "checks": [{"type": "http", "path": "/health"}]}],
            }
        ],
        "edges": [],
        "policies": {"update": {"min_healthy_ms": 1000}},
    }


def scenario() -> Doc:
    return {
        "name": "small",
        "description": "Three workers roll to w:2.",
        "seed": 4,
        "manifests": {"v1": manifest(), "v2": manifest("w:2")},
        "behaviors": {"default": {"start_ms": 100}, "v2": {"agents": {"worker-1": {"start_failure": 0.5}}}},
        "actions": [
            {"at_ms": 5000, "deploy": "v2", "overrides": {"max_parallel": 2}},
            {"at_ms": 0, "deploy": "v1"},
            {"at_ms": 9000, "crash": {"agent": "worker-2"}},
        ],
    }


def test_a_valid_scenario_loads_with_actions_in_time_order() -> None:
    loaded = load_scenario(scenario())
    assert (loaded.name, loaded.description, loaded.seed, loaded.until_ms) == (
        "small",
        "Three workers roll to w:2.",
        4,
        None,
    )
    assert [(a.at_ms, a.verb, a.target) for a in loaded.actions] == [
        (0.0, "deploy", "v1"),
        (5000.0, "deploy", "v2"),
        (9000.0, "crash", "worker-2"),
    ]
    assert loaded.behaviors.resolve("v2", "worker-1").start_failure == 0.5
    assert loaded.behaviors.resolve("v2", "worker-0").start_failure == 0.0


def test_description_and_seed_are_optional() -> None:
    doc = scenario()
    del doc["description"], doc["seed"]
    loaded = load_scenario(doc)
    assert (loaded.description, loaded.seed) == (None, 0)


def _set(path: str, value: Any) -> Callable[[Doc], None]:
    def change(doc: Doc) -> None:
        *parents, last = path.split("/")
        target: Any = doc
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return change


def _delete(key: str) -> Callable[[Doc], None]:
    return lambda doc: doc.pop(key)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set("nmae", "x"), "$.nmae: unknown key"),
        (_set("two\nlines", "x"), '$["two\\nlines"]: unknown key'),
        (_set("behaviors/v1.5", {}), '$.behaviors["v1.5"]: unknown manifest'),
        (_delete("name"), "$.name: is required"),
        (_delete("actions"), "$.actions: is required"),
        (_set("name", " "), "$.name: must be a non-blank string"),
        (_set("description", 3), "$.description: must be a non-blank string"),
        (_set("seed", -1), "$.seed: must be a non-negative integer"),
        (_set("until_ms", "soon"), "$.until_ms: must be a finite number"),
        (_set("until_ms", float("nan")), "$.until_ms: must be a finite number"),
        (_set("until_ms", 10**400), "$.until_ms: must be a finite number"),  # no float holds it
        (_set("manifests", {}), "$.manifests: must name at least one manifest"),
        (_set("manifests/default", manifest()), '$.manifests.default: "default" is reserved for behaviors'),
        (_set("manifests/v1/nodes", []), "$.manifests.v1: nodes must be a non-empty list"),
        (_set("behaviors/v3", {}), "$.behaviors.v3: unknown manifest"),
        (_set("behaviors/default/start_msec", 5), "$.behaviors.default.start_msec: unknown key"),
        (
            _set("behaviors/default/start_ms", {"lognormal": {"median": 5}}),
            "$.behaviors.default.start_ms.lognormal.sigma: is required",
        ),
        (_set("behaviors/v2/agents/worker-9", {}), "$.behaviors.v2.agents.worker-9: unknown agent"),
        (_set("behaviors/v2/agents/worker-1/agents", {}), "$.behaviors.v2.agents.worker-1.agents: unknown key"),
        (
            _set("behaviors/v2/check_failure", 1.5),
            "$.behaviors.v2.check_failure: must be a probability between 0 and 1",
        ),
        (_set("actions/1/deploy", "v3"), '$.actions[1].deploy: unknown manifest "v3"'),
        (_set("actions/1/promote", "api"), "$.actions[1]: must have exactly one of: deploy, promote"),
        (_set("actions/1", {"at_ms": 1, "promote": "api", "version": "1"}), "$.actions[1].version: unknown key"),
        (_set("actions/1", {"promote": "api"}), "$.actions[1].at_ms: is required"),
        (_set("actions/1/at_ms", -5), "$.actions[1].at_ms: must be at least 0"),
        (
            _set("actions/0/overrides", {"max_parallel": "two"}),
            "$.actions[0].overrides: policies.update.max_parallel must be a non-negative integer",
        ),
        (_set("actions/2/crash", {"agent": "worker-7"}), '$.actions[2].crash.agent: unknown agent "worker-7"'),
        (_set("actions/2/crash", "worker-2"), "$.actions[2].crash: must be an object"),
        (_set("actions", {}), "$.actions: must be a list"),
    ],
)
def test_each_problem_names_its_path(change: Callable[[Doc], None], message: str) -> None:
    doc = scenario()
    change(doc)
    with pytest.raises(ScenarioError) as raised:
        load_scenario(doc)
    assert str(raised.value).startswith(message)


def test_every_problem_is_reported_in_document_order_each_with_its_path() -> None:
    doc = scenario()
    doc["nmae"] = "typo"
    doc["seed"] = -1
    doc["behaviors"]["default"]["check_failure"] = 2
    doc["behaviors"]["v2"]["agents"]["worker-9"] = {"start_ms": {"gamma": 1}}
    doc["actions"][0]["at_ms"] = "later"
    doc["actions"][2]["crash"] = {"agent": "worker-7", "kee": "api"}
    doc["requirements"] = ["max_bad_serving <= 2", "bogus < 1"]
    with pytest.raises(ScenarioError) as raised:
        load_scenario(doc)
    assert [str(p) for p in raised.value.problems] == [
        "$.nmae: unknown key",
        "$.seed: must be a non-negative integer",
        "$.behaviors.default.check_failure: must be a probability between 0 and 1",
        "$.behaviors.v2.agents.worker-9: unknown agent",
        "$.behaviors.v2.agents.worker-9.start_ms.gamma: unknown distribution (expected one of: const, uniform, "
        "exponential, lognormal, normal, empirical)",
        "$.actions[0].at_ms: must be a finite number",
        "$.actions[2].crash.kee: unknown key",
        "$.requirements[1]: requirement \"bogus < 1\": unknown measure 'bogus' (one of outcome, duration_ms, "
        "min_serving, unhealthy_instances, exposure_ms, end_ms, reverted_within_ms, max_bad_serving)",
    ]
    assert str(raised.value) == "$.nmae: unknown key (and 7 more problems)"


def test_one_problem_reads_as_before_and_two_say_how_many_more() -> None:
    doc = scenario()
    doc["seed"] = -1
    with pytest.raises(ScenarioError) as raised:
        load_scenario(doc)
    assert (str(raised.value), raised.value.lines()) == (
        "$.seed: must be a non-negative integer",
        ["$.seed: must be a non-negative integer"],
    )
    doc["name"] = ""
    with pytest.raises(ScenarioError) as raised:
        load_scenario(doc)
    assert str(raised.value) == "$.name: must be a non-blank string (and 1 more problem)"


def test_a_broken_manifest_is_one_problem_not_one_more_per_action_or_behavior_naming_it() -> None:
    doc = scenario()
    doc["manifests"]["v2"]["nodes"] = []
    doc["seed"] = "x"
    with pytest.raises(ScenarioError) as raised:
        load_scenario(doc)
    assert [str(p) for p in raised.value.problems] == [
        "$.manifests.v2: nodes must be a non-empty list",
        "$.seed: must be a non-negative integer",
    ]


def test_a_file_broken_everywhere_prints_the_first_fifty_problems_and_counts_the_rest() -> None:
    doc = scenario()
    doc["actions"] = [{"at_ms": -i - 1, "deploy": "v1"} for i in range(20_000)]
    with pytest.raises(ScenarioError) as raised:
        load_scenario(doc)
    lines = raised.value.lines()
    assert len(raised.value.problems) == 20_000
    assert lines[:2] == ["$.actions[0].at_ms: must be at least 0", "$.actions[1].at_ms: must be at least 0"]
    assert len(lines) == 51 and lines[-1] == "and 19950 more problems"


def test_every_manifest_file_that_cannot_be_read_is_reported(tmp_path: Any) -> None:
    (tmp_path / "broken.json").write_text("{")
    doc = scenario()
    doc["manifests"] = {"v1": {"file": "missing.json"}, "v2": {"file": "broken.json"}}
    with pytest.raises(ScenarioError) as raised:
        load_scenario(doc, tmp_path)
    assert [str(p) for p in raised.value.problems] == [
        f"$.manifests.v1.file: {tmp_path / 'missing.json'}: cannot read the file: No such file or directory",
        f"$.manifests.v2.file: {tmp_path / 'broken.json'}: not valid JSON: Expecting property name enclosed in "
        "double quotes (line 1, column 2)",
    ]


def test_a_document_that_is_not_an_object() -> None:
    with pytest.raises(ScenarioError, match=r"^\$: must be an object$"):
        load_scenario([])


def test_files_that_cannot_be_read_or_parsed(tmp_path: Any) -> None:
    with pytest.raises(ScenarioError, match=r"^cannot read the file: No such file or directory$"):
        read_scenario(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"name": ')
    with pytest.raises(ScenarioError, match=r"^not valid JSON: Expecting value \(line 1, column 10\)$"):
        read_scenario(broken)


def test_every_example_loads() -> None:
    for path in sorted(EXAMPLES.glob("*.json")):
        assert read_scenario(path).description, path


# ---- fuzz -----------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


BASE = scenario()
BASE_PATHS = subtree_paths(BASE)[1:]


def _changed(path: tuple[Any, ...], value: Any, extra: bool = False) -> Doc:
    """BASE with the subtree at `path` replaced by `value`, or with `extra`, `value` added beside it."""
    changed: Doc = replaced(BASE, path, value, beside=extra)
    return changed


def _loads_or_names_a_path(document: Any) -> None:
    """Loads, or every problem found names its JSONPath and is one line, as is the error's own message."""
    try:
        load_scenario(document)
    except ScenarioError as error:
        assert "\n" not in str(error)
        assert str(error).startswith("$")
        assert error.problems and (error.path, error.problem) == (error.problems[0].path, error.problems[0].problem)
        for problem in error.problems:
            assert problem.path.startswith("$") and problem.problem, problem
            assert "\n" not in str(problem), problem


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=json_values)
def test_fuzz_arbitrary_json(document: Any) -> None:
    _loads_or_names_a_path(document)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(BASE_PATHS), value=json_values, extra=st.booleans())
def test_fuzz_one_change_to_a_valid_scenario(path: tuple[Any, ...], value: Any, extra: bool) -> None:
    """Replace any subtree (or add a key beside it) with arbitrary JSON: a clean error or a scenario."""
    _loads_or_names_a_path(_changed(path, value, extra))


# ---- bounded inputs -------------------------------------------------------------------------------

NOT_FINITE = "holds a number that is not finite (NaN, Infinity, or over 1.8e308 in size)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[" * 100_000, "nested more than 64 levels deep"),  # json.loads alone raises RecursionError
        ('{"name": ' + "[" * 64 + "]" * 64 + "}", "nested more than 64 levels deep"),
        ('{"name": "x", "until_ms": NaN}', NOT_FINITE),
        ('{"seed": Infinity}', NOT_FINITE),
        ('{"seed": -Infinity}', NOT_FINITE),
        ('{"until_ms": 1e400}', NOT_FINITE),
        ('{"until_ms": 1' + "0" * 400 + "}", NOT_FINITE),
        ('{"seed": ' + "1" * 5000 + "}", "holds an integer with too many digits"),
    ],
)
def test_json_that_python_would_take_but_a_scenario_must_not_hold(tmp_path: Any, text: str, message: str) -> None:
    path = tmp_path / "scenario.json"
    path.write_text(text)
    with pytest.raises(ScenarioError) as raised:
        read_scenario(path)
    assert str(raised.value) == message


def test_a_huge_count_is_refused_before_any_agent_is_made() -> None:
    doc = scenario()
    doc["manifests"]["v1"]["nodes"][0]["count"] = 10**12
    with pytest.raises(ScenarioError, match=r'^\$\.manifests\.v1: node "worker": count must be at most 100000$'):
        load_scenario(doc)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(BASE_PATHS), value=awkward_values)
def test_fuzz_awkward_files_load_or_fail_in_one_line(
    tmp_path_factory: pytest.TempPathFactory, path: tuple[Any, ...], value: Any
) -> None:
    """Any subtree of a valid scenario file replaced by a value nested past the limit, holding NaN, an infinity or
    an integer no float holds, or odd text (written as Python writes it: `NaN`, `Infinity`): the file loads, or
    is a ScenarioError of one line, and it never loads when it holds what must be refused."""
    doc = _changed(path, value)
    file = tmp_path_factory.getbasetemp() / "fuzzed.json"
    file.write_text(json.dumps(doc), encoding="utf-8")
    try:
        read_scenario(file)
    except ScenarioError as error:
        assert "\n" not in str(error)
        assert all("\n" not in line for line in error.lines())
    else:
        assert not unfit(doc)
