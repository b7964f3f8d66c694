"""Requirements (sim/requirements.py) and the measures they read (sim/measures.py), on results built by hand:
every measure's value on a known timeline, `reverted_within_ms` and `max_bad_serving` by their exact definitions
(overlapping and touching intervals, a failure never reverted, a revert that never completed), and the parser's
one-line errors, fuzzed: whatever the text, a requirement or a RequirementError, never anything else."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim import Result, ScenarioError, load_scenario
from sim.measures import max_bad_serving, reverted_within_ms
from sim.metrics import compute_metrics
from sim.requirements import NAMES, OPERATORS, Requirement, RequirementError, measures_of, parse_requirement
from tests.awkward import awkward_values, nested, odd_text
from tests.sim.conftest import EXAMPLES, _event, _instance

V1, V2, V3, V4 = "dep_k_1", "dep_k_2", "dep_k_3", "dep_k_4"


def _version(number: str, created_by: str = "deploy", reverts: str | None = None) -> dict[str, Any]:
    rollback = None if reverts is None else {"from_version": reverts, "to_version": "1", "reason": "r"}
    return {"version": number, "stable": False, "spec_digest": "d", "created_by": created_by, "rollback": rollback}


def _deployment(
    deployment_id: str, version: str, status: str, events: list[dict[str, Any]], reverted_to: str | None = None
) -> dict[str, Any]:
    return {
        "deployment_id": deployment_id,
        "deployment_key": "k",
        "status": status,
        "target_version": version,
        "reverted_to_version": reverted_to,
        "events": [e for e in events if e["deployment_id"] == deployment_id],
    }


def result_of(
    deployments: list[dict[str, Any]],
    versions: list[dict[str, Any]],
    instances: list[dict[str, Any]],
    end_ms: float = 300_000.0,
) -> Result:
    """A result with these records; its metrics computed from them, as a run's are."""
    events = sorted((e for d in deployments for e in d["events"]), key=lambda e: e["t_ms"])
    return Result(
        scenario="handmade",
        seed=0,
        end_ms=end_ms,
        deployments=deployments,
        versions={"k": versions},
        instances=instances,
        events=events,
        errors=[],
        final={},
        metrics=compute_metrics(deployments, instances, events, end_ms),
    )


def serving(instance_id: str, version: str, *intervals: tuple[float, float | None]) -> dict[str, Any]:
    """An instance of `version` that was primary and passing in `intervals`."""
    return _instance(
        instance_id, instance_id, version, f"v{version}", "primary", discoverable_ms=[list(i) for i in intervals]
    )


def reverted_run(revert_status: str = "successful") -> Result:
    """v1 succeeds at 10 s; v2 deployed at 60 s fails at 75 s and auto-reverts as v3, which completes at 81 s
    (unless `revert_status` says otherwise). Two v2 instances served from 62 s to 70 s and 65 s to 75 s, a third
    from 70 s (touching the first's end) to 72 s; v1's instances served throughout."""
    events = [
        _event(0.0, V1, "created", version="1"),
        _event(10_000.0, V1, "successful", version="1"),
        _event(60_000.0, V2, "started", version="2"),
        _event(75_000.0, V2, "failed", reason="Failed due to unhealthy instances"),
        _event(75_000.0, V2, "reverted", to_version="1"),
        _event(75_000.0, V3, "started", version="3"),
    ]
    if revert_status == "successful":
        events.append(_event(81_000.0, V3, "successful", version="3"))
    deployments = [
        _deployment(V1, "1", "successful", events),
        _deployment(V2, "2", "failed", events, reverted_to="1"),
        _deployment(V3, "3", revert_status, events),
    ]
    versions = [_version("1"), _version("2"), _version("3", "auto_revert", reverts="2")]
    instances = [
        serving("a1", "1", (10_000.0, None)),
        serving("b1", "1", (10_000.0, None)),
        serving("c1", "1", (10_000.0, None)),
        serving("a2", "2", (62_000.0, 70_000.0)),
        serving("b2", "2", (65_000.0, 75_000.0)),
        serving("c2", "2", (70_000.0, 72_000.0)),
    ]
    return result_of(deployments, versions, instances)


def test_every_measure_of_a_reverted_run() -> None:
    assert measures_of(reverted_run()) == {
        "outcome": "reverted",
        "duration_ms": 15_000.0,
        "min_serving": 3,
        "unhealthy_instances": 0,
        "exposure_ms": 0.0,
        "end_ms": 300_000.0,
        "reverted_within_ms": 21_000.0,
        "max_bad_serving": 2,
    }


def test_reverted_within_ms_runs_from_the_failed_deploy_to_its_revert_completing() -> None:
    assert reverted_within_ms(reverted_run()) == 81_000.0 - 60_000.0


def test_a_revert_that_never_completes_is_never_reverted() -> None:
    assert reverted_within_ms(reverted_run(revert_status="running")) == math.inf


def test_a_revert_with_nothing_to_change_completes_when_it_is_created() -> None:
    # a failed canary is stopped, so every agent still runs v1: the revert is a noop, complete at once
    events = [
        _event(0.0, V1, "created", version="1"),
        _event(10_000.0, V1, "successful", version="1"),
        _event(60_000.0, V2, "started", version="2"),
        _event(95_000.0, V2, "failed", reason="Failed due to unhealthy instances"),
        _event(95_000.0, V2, "reverted", to_version="1"),
        _event(95_000.0, V3, "noop", version="3"),
    ]
    deployments = [
        _deployment(V1, "1", "successful", events),
        _deployment(V2, "2", "failed", events, reverted_to="1"),
        _deployment(V3, "3", "successful", events),
    ]
    versions = [_version("1"), _version("2"), _version("3", "auto_revert", reverts="2")]
    assert reverted_within_ms(result_of(deployments, versions, [])) == 95_000.0 - 60_000.0


def test_a_failed_version_without_a_revert_is_never_reverted() -> None:
    events = [_event(0.0, V1, "created", version="1"), _event(9_000.0, V1, "failed", reason="r")]
    failed = result_of([_deployment(V1, "1", "failed", events)], [_version("1")], [])
    assert reverted_within_ms(failed) == math.inf
    assert parse_requirement("reverted_within_ms <= 1e300").satisfied_by(measures_of(failed)) is False


def test_no_failed_version_satisfies_reverted_within_ms() -> None:
    events = [_event(0.0, V1, "created", version="1"), _event(9_000.0, V1, "successful", version="1")]
    fine = result_of([_deployment(V1, "1", "successful", events)], [_version("1")], [serving("a1", "1", (0.0, None))])
    assert reverted_within_ms(fine) == 0.0
    assert max_bad_serving(fine) == 0
    assert parse_requirement("reverted_within_ms <= 0").satisfied_by(measures_of(fine))


def test_the_slowest_of_two_reverted_failures_counts_and_a_manual_rollback_reverts_too() -> None:
    """v2 fails at 20 s (deployed at 10 s) and is rolled back by hand as v3, done at 50 s; v4, deployed at 100 s,
    fails and auto-reverts as v5, done at 105 s: 40 s, not 5 s."""
    events = [
        _event(10_000.0, V1, "created", version="2"),
        _event(20_000.0, V1, "failed", reason="r"),
        _event(30_000.0, V2, "started", version="3"),
        _event(50_000.0, V2, "successful", version="3"),
        _event(100_000.0, V3, "started", version="4"),
        _event(101_000.0, V3, "failed", reason="r"),
        _event(101_000.0, V4, "started", version="5"),
        _event(105_000.0, V4, "successful", version="5"),
    ]
    deployments = [
        _deployment(V1, "2", "failed", events),
        _deployment(V2, "3", "successful", events),
        _deployment(V3, "4", "failed", events, reverted_to="3"),
        _deployment(V4, "5", "successful", events),
    ]
    versions = [
        _version("2"),
        _version("3", "rollback", reverts="2"),
        _version("4"),
        _version("5", "auto_revert", reverts="4"),
    ]
    assert reverted_within_ms(result_of(deployments, versions, [])) == 40_000.0


def test_max_bad_serving_counts_overlaps_of_one_failed_version_only() -> None:
    """v2 (failed): three instances overlapping from 30 s to 40 s, and one whose interval starts as another ends;
    v4 (failed): two more, overlapping v2's but not each other; v1 (successful) serves ten throughout."""
    events = [
        _event(0.0, V1, "created", version="1"),
        _event(1_000.0, V1, "successful", version="1"),
        _event(10_000.0, V2, "started", version="2"),
        _event(60_000.0, V2, "failed", reason="r"),
        _event(70_000.0, V4, "started", version="4"),
        _event(90_000.0, V4, "failed", reason="r"),
    ]
    deployments = [
        _deployment(V1, "1", "successful", events),
        _deployment(V2, "2", "failed", events),
        _deployment(V4, "4", "failed", events),
    ]
    instances = [
        *(serving(f"ok{i}", "1", (1_000.0, None)) for i in range(10)),
        serving("a2", "2", (10_000.0, 40_000.0)),
        serving("b2", "2", (20_000.0, 50_000.0), (55_000.0, 60_000.0)),
        serving("c2", "2", (30_000.0, 60_000.0)),
        serving("d2", "2", (60_000.0, 65_000.0)),
        serving("a4", "4", (35_000.0, 38_000.0)),
        serving("b4", "4", (38_000.0, None)),
    ]
    result = result_of(deployments, [_version("1"), _version("2"), _version("4")], instances)
    assert max_bad_serving(result) == 3


def test_max_bad_serving_of_the_handmade_fixture_is_zero_as_nothing_failed(handmade: Result) -> None:
    assert max_bad_serving(handmade) == 0


@pytest.mark.parametrize(
    ("text", "measure", "op", "value"),
    [
        ("reverted_within_ms <= 120000", "reverted_within_ms", "<=", 120_000.0),
        ("max_bad_serving<=2", "max_bad_serving", "<=", 2.0),
        ("  min_serving >= 8 ", "min_serving", ">=", 8.0),
        ("outcome == successful", "outcome", "==", "successful"),
        ("outcome != failed", "outcome", "!=", "failed"),
        ("duration_ms < 6e5", "duration_ms", "<", 600_000.0),
        ("exposure_ms > -.5", "exposure_ms", ">", -0.5),
    ],
)
def test_requirements_read_as_written(text: str, measure: str, op: str, value: float | str) -> None:
    requirement = parse_requirement(text)
    assert requirement == Requirement(measure, op, value)
    assert parse_requirement(str(requirement)) == requirement


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'requirement "" must read MEASURE OP VALUE, with OP one of <= < >= > == !='),
        ("max_bad_serving", 'requirement "max_bad_serving" must read MEASURE OP VALUE, with OP one of <= < >= > == !='),
        ("max_bad_serving => 2", 'requirement "max_bad_serving => 2" must read MEASURE OP VALUE, with OP one of'),
        ("bad_serving <= 2", "requirement \"bad_serving <= 2\": unknown measure 'bad_serving' (one of outcome,"),
        ("outcome <= successful", 'requirement "outcome <= successful": outcome compares with == or != only'),
        ("outcome == great", 'requirement "outcome == great": unknown outcome "great" (one of running,'),
        ("min_serving >= eight", 'requirement "min_serving >= eight": min_serving compares with a finite number'),
        ("min_serving >= nan", 'requirement "min_serving >= nan": min_serving compares with a finite number'),
        ("min_serving >= 1e999", 'requirement "min_serving >= 1e999": min_serving compares with a finite number'),
        ("min_serving >= 8 and", 'requirement "min_serving >= 8 and" must read MEASURE OP VALUE'),
        (
            "min_serving\n>= 8;",
            'requirement "min_serving\\n>= 8;": min_serving compares with a finite number, not "8;"',
        ),
        ("x" * 201, 'requirement "' + "x" * 57 + '..." is longer than 200 characters'),
    ],
)
def test_bad_requirements_are_one_line_naming_the_problem(text: str, message: str) -> None:
    with pytest.raises(RequirementError) as raised:
        parse_requirement(text)
    assert raised.value.message.startswith(message)
    assert "\n" not in raised.value.message


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.text(),
        st.text(alphabet="<=>!. e-+0123456789_abcdfimnorstuvx\n\t\u2028\ud800", max_size=40),
        st.builds(
            lambda name, op, value: f"{name} {op} {value}",
            st.sampled_from(NAMES),
            st.sampled_from(list(OPERATORS)),
            st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5)),
        ),
        st.integers(0, 100_000).map(lambda n: "a" * n + " <= 1"),
    )
)
def test_any_text_is_a_requirement_or_a_one_line_error(text: str) -> None:
    try:
        requirement = parse_requirement(text)
    except RequirementError as error:
        assert "\n" not in error.message and "\r" not in error.message and "\u2028" not in error.message
        assert len(error.message) < 1000
        error.message.encode("utf-8")  # printable: no lone surrogate survives
        return
    assert requirement.measure in NAMES
    assert isinstance(requirement.value, str) or math.isfinite(requirement.value)


def test_a_missing_value_satisfies_no_requirement() -> None:
    for text in ("duration_ms <= 1e12", "duration_ms > -1", "duration_ms != 0"):
        assert not parse_requirement(text).satisfied_by({"duration_ms": None})


def _scenario(requirements: Any) -> dict[str, Any]:
    document = json.loads((EXAMPLES / "rolling-success.json").read_text())
    document["requirements"] = requirements
    return document


def test_a_scenario_states_its_requirements() -> None:
    scenario = load_scenario(_scenario(["max_bad_serving <= 2", "outcome == successful"]))
    assert scenario.requirements == (
        Requirement("max_bad_serving", "<=", 2.0),
        Requirement("outcome", "==", "successful"),
    )
    assert load_scenario(json.loads((EXAMPLES / "rolling-success.json").read_text())).requirements == ()


@pytest.mark.parametrize(
    ("requirements", "message"),
    [
        ("max_bad_serving <= 2", "$.requirements: must be a list"),
        ([3], "$.requirements[0]: must be a non-blank string"),
        (["max_bad_serving <= 2", "oops"], '$.requirements[1]: requirement "oops" must read MEASURE OP VALUE'),
        ([nested(200)], "$.requirements[0]: must be a non-blank string"),
        (
            ["max_bad_serving <= 2\u2028"],
            '$.requirements[0]: requirement "max_bad_serving <= 2\\u2028": max_bad_serving',
        ),
    ],
)
def test_bad_scenario_requirements_name_their_path(requirements: Any, message: str) -> None:
    with pytest.raises(ScenarioError) as raised:
        load_scenario(_scenario(requirements))
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


@settings(max_examples=150, deadline=None)
@given(st.one_of(awkward_values, st.lists(awkward_values | odd_text, max_size=4)))
def test_any_requirements_value_is_loaded_or_one_line_naming_its_path(value: Any) -> None:
    try:
        scenario = load_scenario(_scenario(value))
    except ScenarioError as error:
        assert str(error).startswith("$.requirements") and "\n" not in str(error)
        return
    assert all(r.measure in NAMES for r in scenario.requirements)
