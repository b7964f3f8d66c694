"""R2: update policy defaults, lenient normalization, validation and the cross-field rules.

Reference: SEMANTICS.md §2, reference/mirrorneuron-deployments.md §2-3 and §18 scenarios 1, 4 and 5.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from mn_deploy_core.errors import InvalidManifestError
from mn_deploy_core.manifest import load_manifest
from mn_deploy_core.policy import (
    DEFAULT,
    HEALTH_CHECKS,
    ReschedulePolicy,
    UpdatePolicy,
    merged,
    normalize,
    reschedule_policy,
    restart_policy,
    unknown_keys,
    validate_combined,
    validate_update,
)
from mn_deploy_core.ports import RestartPolicy
from mn_deploy_core.strategies import STRATEGIES

P = "policies.update"


def doc(update: Any = None, **policies: Any) -> dict[str, Any]:
    """A valid service manifest; `update` (when given) becomes `policies.update`."""
    document: dict[str, Any] = {
        "job_type": "service",
        "deployment": {"key": "agent-api"},
        "nodes": [{"node_id": "api", "agent_type": "http_api", "config": {"port": 8080}}],
    }
    if update is not None:
        policies["update"] = update
    if policies:
        document["policies"] = policies
    return document


def problems_of(document: Any, overrides: Any = None) -> tuple[str, ...]:
    with pytest.raises(InvalidManifestError) as info:
        load_manifest(document, overrides=overrides)
    return info.value.problems


# --- defaults ---------------------------------------------------------------------------------------------


def test_r2_defaults_without_update_policy() -> None:
    # scenario 1: no update policy -> rolling, 1, 0, 10000, 300000, 600000, false, false
    policy = load_manifest(doc()).policy
    assert policy == DEFAULT
    assert (
        policy.strategy,
        policy.max_parallel,
        policy.canary,
        policy.min_healthy_ms,
        policy.healthy_deadline_ms,
        policy.progress_deadline_ms,
        policy.health_check,
        policy.auto_promote,
        policy.auto_revert,
    ) == ("rolling", 1, 0, 10_000, 300_000, 600_000, "checks", False, False)
    assert dict(policy.extra) == {}


def test_r2_defaults_with_empty_update_policy() -> None:
    assert load_manifest(doc({})).policy == DEFAULT
    assert normalize({}) == DEFAULT
    assert normalize(None) == DEFAULT


def test_r2_defaults_table_is_the_reference_table() -> None:
    assert UpdatePolicy().to_json() == {
        "strategy": "rolling",
        "max_parallel": 1,
        "canary": 0,
        "min_healthy_ms": 10_000,
        "healthy_deadline_ms": 300_000,
        "progress_deadline_ms": 600_000,
        "health_check": "checks",
        "auto_promote": False,
        "auto_revert": False,
    }
    assert STRATEGIES == ("rolling", "canary", "blue-green", "progressive")
    assert HEALTH_CHECKS == ("checks", "agent_states")


@pytest.mark.parametrize("raw", [[], "canary", 3, ("strategy", "canary")])
def test_r2_normalize_non_mapping_gives_defaults(raw: Any) -> None:
    assert normalize(raw) == DEFAULT


# --- lenient normalization --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, 5),
        (0, 0),
        ("5", 5),
        ("0", 0),
        (" 12 ", 12),
        ("+3", 3),
        ("007", 7),
        (-1, 1),
        ("-1", 1),
        ("abc", 1),
        ("", 1),
        ("1.5", 1),
        ("1_000", 1),
        ("\u0663", 1),  # ARABIC-INDIC DIGIT THREE: int() takes it, the reference does not
        ("5x", 1),
        (2.0, 1),
        (True, 1),
        (False, 1),
        (None, 1),
        ([3], 1),
    ],
)
def test_r2_normalize_max_parallel(value: Any, expected: int) -> None:
    assert normalize({"max_parallel": value}).max_parallel == expected


@pytest.mark.parametrize(
    ("field", "default"),
    [
        ("canary", 0),
        ("min_healthy_ms", 10_000),
        ("healthy_deadline_ms", 300_000),
        ("progress_deadline_ms", 600_000),
    ],
)
def test_r2_normalize_other_counts_parse_strings_and_fall_back(field: str, default: int) -> None:
    assert getattr(normalize({field: "42"}), field) == 42
    assert getattr(normalize({field: 0}), field) == 0  # 0 is kept, healthy_deadline_ms included
    assert getattr(normalize({field: -7}), field) == default
    assert getattr(normalize({field: "soon"}), field) == default
    assert getattr(normalize({field: 3.5}), field) == default


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("rolling", "rolling"),
        ("Canary", "canary"),
        ("Blue_Green", "blue-green"),
        ("blue_green", "blue-green"),
        ("BLUE-GREEN", "blue-green"),
        (" canary ", "canary"),
        ("teleport", "rolling"),
        ("", "rolling"),
        (5, "rolling"),
        (None, "rolling"),
    ],
)
def test_r2_normalize_strategy(value: Any, expected: str) -> None:
    assert normalize({"strategy": value}).strategy == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("checks", "checks"),
        ("agent_states", "agent_states"),
        ("Agent-States", "agent_states"),
        ("CHECKS", "checks"),
        ("pings", "checks"),
        (1, "checks"),
    ],
)
def test_r2_normalize_health_check(value: Any, expected: str) -> None:
    assert normalize({"health_check": value}).health_check == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("TRUE", True),
        ("yes", True),
        ("Yes", True),
        ("on", True),
        ("1", True),
        (" on ", True),
        (1, True),
        ("false", False),
        ("no", False),
        ("off", False),
        ("OFF", False),
        ("0", False),
        (0, False),
        ("maybe", False),
        (2, False),
        (None, False),
        (1.0, False),
    ],
)
def test_r2_normalize_flags(value: Any, expected: bool) -> None:
    policy = normalize({"auto_promote": value, "auto_revert": value})
    assert policy.auto_promote is expected
    assert policy.auto_revert is expected


def test_r2_normalize_unknown_keys_pass_through_into_extra() -> None:
    policy = normalize({"strategy": "canary", "max_surge": 3, "notes": {"owner": "team-a"}})
    assert policy.strategy == "canary"
    assert dict(policy.extra) == {"max_surge": 3, "notes": {"owner": "team-a"}}
    as_json = policy.to_json()
    assert as_json["max_surge"] == 3
    assert as_json["notes"] == {"owner": "team-a"}
    assert as_json["strategy"] == "canary"
    assert "extra" not in as_json


def test_r2_normalize_known_keys_never_land_in_extra() -> None:
    raw = {field: "garbage" for field in UpdatePolicy.__dataclass_fields__ if field != "extra"}
    policy = normalize(raw)
    assert dict(policy.extra) == {}
    assert policy == DEFAULT


def test_r2_normalize_round_trips_through_to_json() -> None:
    policy = normalize({"strategy": "Blue_Green", "canary": "2", "auto_revert": "on", "x": [1]})
    assert normalize(policy.to_json()) == policy


def test_r2_manifest_policy_is_normalized() -> None:
    policy = load_manifest(doc({"strategy": "Canary", "canary": 2, "health_check": "agent_states"})).policy
    assert (policy.strategy, policy.canary, policy.health_check) == ("canary", 2, "agent_states")


def test_r2_manifest_unknown_update_keys_pass_through() -> None:
    manifest = load_manifest(doc({"max_surge": 2}))
    assert dict(manifest.policy.extra) == {"max_surge": 2}
    assert manifest.document["policies"]["update"]["max_surge"] == 2


# --- validation messages (reference §3) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"strategy": "teleport"}, f'{P}.strategy has unsupported value "teleport"'),
        ({"strategy": "blue_green"}, f'{P}.strategy has unsupported value "blue_green"'),
        ({"strategy": "Blue_Green"}, f'{P}.strategy has unsupported value "Blue_Green"'),
        ({"health_check": "pings"}, f'{P}.health_check has unsupported value "pings"'),
        ({"health_check": "agent-states"}, f'{P}.health_check has unsupported value "agent-states"'),
        ({"max_parallel": -1}, f"{P}.max_parallel must be a non-negative integer"),
        ({"max_parallel": "2"}, f"{P}.max_parallel must be a non-negative integer"),
        ({"max_parallel": 1.5}, f"{P}.max_parallel must be a non-negative integer"),
        ({"max_parallel": True}, f"{P}.max_parallel must be a non-negative integer"),
        ({"canary": -2}, f"{P}.canary must be a non-negative integer"),
        ({"min_healthy_ms": "fast"}, f"{P}.min_healthy_ms must be a non-negative integer"),
        ({"progress_deadline_ms": None}, f"{P}.progress_deadline_ms must be a non-negative integer"),
        ({"healthy_deadline_ms": 0}, f"{P}.healthy_deadline_ms must be a positive integer"),
        ({"healthy_deadline_ms": -5}, f"{P}.healthy_deadline_ms must be a positive integer"),
        ({"healthy_deadline_ms": "300000"}, f"{P}.healthy_deadline_ms must be a positive integer"),
        ({"auto_promote": "yes"}, f"{P}.auto_promote must be a boolean"),
        ({"auto_revert": 1}, f"{P}.auto_revert must be a boolean"),
        ({"auto_revert": None}, f"{P}.auto_revert must be a boolean"),
    ],
)
def test_r2_validation_message(update: dict[str, Any], message: str) -> None:
    assert validate_update(update) == [message]
    assert problems_of(doc(update)) == (message,)


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(
    ("field", "kind"),
    [("max_parallel", "non-negative"), ("min_healthy_ms", "non-negative"), ("healthy_deadline_ms", "positive")],
)
def test_r2_nan_and_infinities_are_no_integers(number: float, field: str, kind: str) -> None:
    """Validated alone such a value is not an integer, and normalizing falls back to the default; a manifest or an
    override holding one is refused before any field is checked, as no JSON number."""
    assert validate_update({field: number}) == [f"{P}.{field} must be a {kind} integer"]
    assert normalize({field: number}) == DEFAULT
    not_finite = "holds a number that is not finite (NaN, Infinity, or over 1.8e308 in size)"
    assert problems_of(doc({field: number})) == (f"manifest: {not_finite}",)
    assert problems_of(doc(), overrides={field: number}) == (f"update policy overrides: {not_finite}",)


@pytest.mark.parametrize("update", [[], "rolling", 7, None])
def test_r2_update_not_an_object(update: Any) -> None:
    assert validate_update(update) == [f"{P} must be an object"]
    assert problems_of({**doc(), "policies": {"update": update}}) == (f"{P} must be an object",)


@pytest.mark.parametrize("deployment", [[], "agent-api", 3, None])
def test_r2_deployment_not_an_object(deployment: Any) -> None:
    document = {**doc(), "deployment": deployment, "job_name": "agent-api"}
    assert problems_of(document) == ("deployment must be an object",)


@pytest.mark.parametrize("key", ["", "   ", 5, None, ["agent-api"]])
def test_r2_deployment_key_not_a_string(key: Any) -> None:
    document = {**doc(), "deployment": {"key": key}, "job_name": "fallback"}
    assert problems_of(document) == ("deployment.key must be a string",)


def test_r2_policies_not_an_object() -> None:
    assert problems_of({**doc(), "policies": ["update"]}) == ("policies must be an object",)


def test_r2_auto_promote_requires_canary_for_canary_strategy() -> None:
    # scenario 4
    update = {"strategy": "canary", "canary": 0, "auto_promote": True}
    message = f"{P}.auto_promote requires canary > 0 for canary deployments"
    assert problems_of(doc(update)) == (message,)
    assert validate_combined(normalize(update)) == [message]


@pytest.mark.parametrize(
    "update",
    [
        {"strategy": "canary", "canary": 1, "auto_promote": True},
        {"strategy": "rolling", "canary": 0, "auto_promote": True},
        {"strategy": "blue-green", "canary": 0, "auto_promote": True},
        {"strategy": "canary", "canary": 0, "auto_promote": False},
    ],
)
def test_r2_auto_promote_rule_only_for_canary_with_zero_canaries(update: dict[str, Any]) -> None:
    assert validate_combined(normalize(update)) == []
    assert load_manifest(doc(update)).policy.auto_promote is update["auto_promote"]


def test_r2_auto_promote_rule_checked_on_merged_policy() -> None:
    # the manifest is fine on its own; the override takes its canaries away
    base = {"strategy": "canary", "canary": 1, "auto_promote": True}
    assert problems_of(doc(base), overrides={"canary": 0}) == (
        f"{P}.auto_promote requires canary > 0 for canary deployments",
    )


def test_r2_validation_collects_every_policy_problem_in_field_order() -> None:
    update = {
        "strategy": "teleport",
        "health_check": "pings",
        "max_parallel": -1,
        "canary": "x",
        "healthy_deadline_ms": 0,
        "auto_promote": "yes",
        "auto_revert": "no",
    }
    assert validate_update(update) == [
        f'{P}.strategy has unsupported value "teleport"',
        f'{P}.health_check has unsupported value "pings"',
        f"{P}.max_parallel must be a non-negative integer",
        f"{P}.canary must be a non-negative integer",
        f"{P}.healthy_deadline_ms must be a positive integer",
        f"{P}.auto_promote must be a boolean",
        f"{P}.auto_revert must be a boolean",
    ]


@pytest.mark.parametrize(
    "update",
    [
        {"strategy": "Canary", "canary": 1},
        {"strategy": " rolling "},
        {"strategy": "BLUE-GREEN"},
        {"health_check": "Agent_States"},
        {"max_parallel": 0, "canary": 0, "min_healthy_ms": 0, "progress_deadline_ms": 0},
        {"auto_promote": False, "auto_revert": True},
    ],
)
def test_r2_validation_accepts_valid_values(update: dict[str, Any]) -> None:
    assert validate_update(update) == []
    load_manifest(doc(update))


def test_r2_validation_message_stays_on_one_line() -> None:
    assert validate_update({"strategy": "roll\ning"}) == [f'{P}.strategy has unsupported value "roll\\ning"']


# --- cross-field rules (SEMANTICS §2) ---------------------------------------------------------------------

MIN_VS_HEALTHY = f"{P}.min_healthy_ms must be less than healthy_deadline_ms"
HEALTHY_VS_PROGRESS = f"{P}.healthy_deadline_ms must be less than progress_deadline_ms"


@pytest.mark.parametrize(("min_healthy", "healthy"), [(5_000, 5_000), (6_000, 5_000)])
def test_r2_min_healthy_must_be_less_than_healthy_deadline(min_healthy: int, healthy: int) -> None:
    update = {"min_healthy_ms": min_healthy, "healthy_deadline_ms": healthy}
    assert validate_combined(normalize(update)) == [MIN_VS_HEALTHY]
    assert problems_of(doc(update)) == (MIN_VS_HEALTHY,)


def test_r2_min_healthy_below_healthy_deadline_is_fine() -> None:
    policy = load_manifest(doc({"min_healthy_ms": 4_999, "healthy_deadline_ms": 5_000})).policy
    assert (policy.min_healthy_ms, policy.healthy_deadline_ms) == (4_999, 5_000)


@pytest.mark.parametrize(("healthy", "progress"), [(60_000, 60_000), (90_000, 60_000)])
def test_r2_healthy_deadline_must_be_less_than_progress_deadline(healthy: int, progress: int) -> None:
    update = {"healthy_deadline_ms": healthy, "progress_deadline_ms": progress}
    assert validate_combined(normalize(update)) == [HEALTHY_VS_PROGRESS]
    assert problems_of(doc(update)) == (HEALTHY_VS_PROGRESS,)


def test_r2_healthy_deadline_rule_skipped_when_progress_deadline_is_zero() -> None:
    update = {"healthy_deadline_ms": 900_000, "progress_deadline_ms": 0}
    assert validate_combined(normalize(update)) == []
    assert load_manifest(doc(update)).policy.progress_deadline_ms == 0


def test_r2_both_cross_field_rules_reported_together() -> None:
    update = {"min_healthy_ms": 700_000, "healthy_deadline_ms": 700_000, "progress_deadline_ms": 600_000}
    assert problems_of(doc(update)) == (MIN_VS_HEALTHY, HEALTHY_VS_PROGRESS)


def test_r2_default_against_explicit_value_is_checked() -> None:
    # min_healthy_ms defaults to 10000, so a healthy deadline of 10000 breaks the rule
    assert problems_of(doc({"healthy_deadline_ms": 10_000})) == (MIN_VS_HEALTHY,)
    # progress deadline defaults to 600000
    assert problems_of(doc({"healthy_deadline_ms": 600_000})) == (HEALTHY_VS_PROGRESS,)


def test_r2_cross_field_rules_do_not_run_on_invalid_fields() -> None:
    # healthy_deadline_ms 0 is already an error; no second, derived complaint about min_healthy_ms
    assert problems_of(doc({"healthy_deadline_ms": 0})) == (f"{P}.healthy_deadline_ms must be a positive integer",)


def test_r2_cross_field_rules_collected_with_other_problems() -> None:
    document = doc({"min_healthy_ms": 400_000})
    document["nodes"].append({"node_id": "worker"})
    assert problems_of(document) == ('node "worker": agent_type must be a non-blank string', MIN_VS_HEALTHY)


# --- overrides are validated like the manifest (SEMANTICS §2 changes reference §3) ---------------------------


def test_r2_override_blue_green_spelling_is_an_error() -> None:
    # scenario 5, changed: MirrorNeuron normalizes the override silently; we refuse it
    assert problems_of(doc(), overrides={"strategy": "Blue_Green"}) == (
        f'{P}.strategy has unsupported value "Blue_Green"',
    )


def test_r2_manifest_blue_green_spelling_is_an_error() -> None:
    assert problems_of(doc({"strategy": "blue_green"})) == (f'{P}.strategy has unsupported value "blue_green"',)


def test_r2_override_valid_strategy_is_applied() -> None:
    assert load_manifest(doc({"strategy": "rolling"}), overrides={"strategy": "blue-green"}).policy.strategy == (
        "blue-green"
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"max_parallel": -1}, f"{P}.max_parallel must be a non-negative integer"),
        ({"canary": "1"}, f"{P}.canary must be a non-negative integer"),
        ({"auto_revert": "yes"}, f"{P}.auto_revert must be a boolean"),
        ({"healthy_deadline_ms": 0}, f"{P}.healthy_deadline_ms must be a positive integer"),
        ({"health_check": "ping"}, f'{P}.health_check has unsupported value "ping"'),
    ],
)
def test_r2_override_fields_validated(override: dict[str, Any], message: str) -> None:
    assert problems_of(doc(), overrides=override) == (message,)


def test_r2_override_cross_field_rules_checked() -> None:
    assert problems_of(doc({"healthy_deadline_ms": 60_000}), overrides={"min_healthy_ms": 60_000}) == (MIN_VS_HEALTHY,)
    assert problems_of(doc(), overrides={"healthy_deadline_ms": 600_000}) == (HEALTHY_VS_PROGRESS,)


def test_r2_override_can_repair_the_merged_policy() -> None:
    # the rule is checked on the merged policy, so an override that fixes the combination is accepted
    policy = load_manifest(doc({"healthy_deadline_ms": 900_000}), overrides={"progress_deadline_ms": 1_200_000}).policy
    assert (policy.healthy_deadline_ms, policy.progress_deadline_ms) == (900_000, 1_200_000)


def test_r2_override_not_an_object_is_an_error() -> None:
    assert problems_of(doc(), overrides=["strategy", "canary"]) == (f"{P} must be an object",)


def test_r2_manifest_and_override_problems_are_both_reported() -> None:
    assert problems_of(doc({"strategy": "teleport"}), overrides={"strategy": "Blue_Green"}) == (
        f'{P}.strategy has unsupported value "teleport"',
        f'{P}.strategy has unsupported value "Blue_Green"',
    )


def test_r2_merged_is_shallow_and_override_wins() -> None:
    raw = {"strategy": "canary", "canary": 1, "meta": {"a": 1}}
    assert merged(raw, {"canary": 2, "meta": {"b": 2}}) == {"strategy": "canary", "canary": 2, "meta": {"b": 2}}
    assert merged(raw, None) == raw
    assert merged(None, {"canary": 2}) == {"canary": 2}
    assert merged("bad", None) == {}
    assert raw == {"strategy": "canary", "canary": 1, "meta": {"a": 1}}  # inputs untouched


# --- restart and reschedule -------------------------------------------------------------------------------


def test_r2_restart_and_reschedule_defaults() -> None:
    manifest = load_manifest(doc())
    assert manifest.restart == RestartPolicy(attempts=2, delay_ms=1000)
    assert manifest.reschedule == ReschedulePolicy(attempts=1)
    problems: list[str] = []
    assert restart_policy({}, problems) == RestartPolicy(2, 1000)
    assert reschedule_policy({}, problems) == ReschedulePolicy(1)
    assert problems == []


def test_r2_restart_and_reschedule_values_read() -> None:
    manifest = load_manifest(doc(restart={"attempts": 5, "delay_ms": 0}, reschedule={"attempts": 0}))
    assert manifest.restart == RestartPolicy(attempts=5, delay_ms=0)
    assert manifest.reschedule == ReschedulePolicy(attempts=0)


def test_r2_restart_partial_keeps_other_default() -> None:
    assert load_manifest(doc(restart={"attempts": 4})).restart == RestartPolicy(attempts=4, delay_ms=1000)
    assert load_manifest(doc(restart={"delay_ms": 250})).restart == RestartPolicy(attempts=2, delay_ms=250)


@pytest.mark.parametrize(
    ("policies", "message"),
    [
        ({"restart": "twice"}, "policies.restart must be an object"),
        ({"restart": [2]}, "policies.restart must be an object"),
        ({"restart": {"attempts": -1}}, "policies.restart.attempts must be a non-negative integer"),
        ({"restart": {"attempts": "2"}}, "policies.restart.attempts must be a non-negative integer"),
        ({"restart": {"delay_ms": 1.5}}, "policies.restart.delay_ms must be a non-negative integer"),
        ({"restart": {"delay_ms": True}}, "policies.restart.delay_ms must be a non-negative integer"),
        ({"reschedule": 1}, "policies.reschedule must be an object"),
        ({"reschedule": {"attempts": -3}}, "policies.reschedule.attempts must be a non-negative integer"),
        ({"reschedule": {"attempts": None}}, "policies.reschedule.attempts must be a non-negative integer"),
    ],
)
def test_r2_restart_and_reschedule_validation(policies: dict[str, Any], message: str) -> None:
    assert problems_of(doc(**policies)) == (message,)
    problems: list[str] = []
    restart = restart_policy(policies, problems)
    reschedule = reschedule_policy(policies, problems)
    assert problems == [message]
    # a bad value leaves the default in place
    assert restart == RestartPolicy()
    assert reschedule == ReschedulePolicy()


def test_r2_restart_and_reschedule_problems_collected_with_update_problems() -> None:
    document = doc({"max_parallel": -1}, restart={"attempts": -1}, reschedule={"attempts": "x"})
    assert problems_of(document) == (
        f"{P}.max_parallel must be a non-negative integer",
        "policies.restart.attempts must be a non-negative integer",
        "policies.reschedule.attempts must be a non-negative integer",
    )


def test_r2_unknown_policy_keys_are_listed_for_a_warning_and_still_pass_through() -> None:
    policies = {
        "update": {"max_paralel": 3, "max_parallel": 2},
        "restart": {"attempts": 1, "delay": 5},
        "reschedule": {"attempts": 1},
        "deployment_key": "k",
        "retry": {},
    }
    assert unknown_keys(policies) == [("update", "max_paralel"), ("restart", "delay"), ("retry",)]
    assert unknown_keys("not an object") == []
    assert normalize(policies["update"]).extra == {"max_paralel": 3}
