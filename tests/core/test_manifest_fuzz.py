"""R1/R2 property tests: loading never fails any other way than InvalidManifestError with one-line problems,
and lenient normalization never fails and always yields valid field values."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mn_deploy_core.errors import InvalidManifestError
from mn_deploy_core.limits import MAX_AGENTS
from mn_deploy_core.manifest import Manifest, load_manifest, runtime_order
from mn_deploy_core.policy import (
    DEFAULT,
    HEALTH_CHECKS,
    UpdatePolicy,
    normalize,
    validate_combined,
    validate_update,
)
from mn_deploy_core.strategies import STRATEGIES
from tests.awkward import awkward_values, unfit

FUZZ = settings(max_examples=200, deadline=None)

POLICY_FIELDS = tuple(f for f in UpdatePolicy.__dataclass_fields__ if f != "extra")
MANIFEST_WORDS = (
    "nodes",
    "node_id",
    "agent_type",
    "count",
    "config",
    "resources",
    "constraints",
    "services",
    "name",
    "checks",
    "type",
    "role",
    "edges",
    "from_node",
    "to_node",
    "message_type",
    "routing_mode",
    "entrypoints",
    "deployment",
    "key",
    "metadata",
    "deployment_key",
    "policies",
    "update",
    "restart",
    "reschedule",
    "attempts",
    "delay_ms",
    "job_name",
    "graph_id",
    "job_type",
)
VALUE_WORDS = (
    "rolling",
    "canary",
    "blue-green",
    "Blue_Green",
    "checks",
    "agent_states",
    "agent-states",
    "http",
    "tcp",
    "exec",
    "service",
    "system",
    "batch",
    "yes",
    "off",
    "1",
    "0",
    "-1",
    "+7",
    "1_000",
    "",
    " ",
    "a\nb",
    "x\r",
    "\u2028",
    "\x85",
    "\ud800",
    "\u00b2",
    "\u0663",
    "worker",
    "worker-1",
)

text = st.text(st.characters(exclude_categories=()), max_size=8)
keys = st.sampled_from(MANIFEST_WORDS + POLICY_FIELDS) | text
strings = st.sampled_from(VALUE_WORDS + MANIFEST_WORDS) | text
# any integer may be drawn anywhere, `count` included: it is bounded by MAX_AGENTS
small_ints = st.integers(min_value=-3, max_value=40) | st.integers(min_value=-1000, max_value=1000)
any_ints = small_ints | st.integers() | st.sampled_from([2**31, 2**63, -(2**63), 10**30, MAX_AGENTS + 1])
floats = st.floats(allow_nan=True, allow_infinity=True)
JSON = st.recursive(
    st.none() | st.booleans() | any_ints | floats | strings,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5),
    max_leaves=16,
)
awkward_overrides = st.none() | st.dictionaries(st.sampled_from(POLICY_FIELDS) | text, awkward_values, max_size=3)
overrides_st = st.none() | st.dictionaries(st.sampled_from(POLICY_FIELDS) | text, JSON, max_size=4)
key_st = st.none() | strings


VALID: dict[str, Any] = {
    "graph_id": "g",
    "job_name": "j",
    "job_type": "service",
    "metadata": {"deployment_key": "meta-key"},
    "deployment": {"key": "agent-api"},
    "policies": {
        "deployment_key": "pol-key",
        "update": {
            "strategy": "canary",
            "max_parallel": 2,
            "canary": 1,
            "min_healthy_ms": 0,
            "healthy_deadline_ms": 60_000,
            "progress_deadline_ms": 120_000,
            "health_check": "checks",
            "auto_promote": False,
            "auto_revert": True,
        },
        "restart": {"attempts": 2, "delay_ms": 500},
        "reschedule": {"attempts": 1},
    },
    "nodes": [
        {"node_id": "router", "agent_type": "router", "role": "ingress", "config": {"mode": "rr"}},
        {
            "node_id": "worker",
            "agent_type": "executor",
            "type": "python",
            "count": 3,
            "config": {"image": "w:1"},
            "resources": {"cpu": 1},
            "constraints": {"zone": "a"},
            "services": [{"name": "w-http", "checks": [{"type": "http", "name": "live"}, {"type": "tcp"}]}],
        },
        {"node_id": "sink", "agent_type": "collector"},
    ],
    "edges": [
        {"from_node": "router", "to_node": "worker", "message_type": "task", "routing_mode": "fanout"},
        {"from_node": "worker", "to_node": "sink", "message_type": "result", "routing_mode": "direct"},
    ],
    "entrypoints": ["router"],
}


def assert_valid_policy(policy: UpdatePolicy) -> None:
    assert policy.strategy in STRATEGIES
    assert policy.health_check in HEALTH_CHECKS
    for name in ("max_parallel", "canary", "min_healthy_ms", "healthy_deadline_ms", "progress_deadline_ms"):
        value = getattr(policy, name)
        assert type(value) is int, name
        assert value >= 0, name
    assert type(policy.auto_promote) is bool
    assert type(policy.auto_revert) is bool
    assert isinstance(policy.extra, Mapping)
    assert not set(policy.extra) & set(POLICY_FIELDS)


def assert_one_line_problems(problems: Any) -> None:
    assert isinstance(problems, tuple)
    assert problems, "an InvalidManifestError must list at least one problem"
    for problem in problems:
        assert isinstance(problem, str)
        assert problem.strip(), repr(problem)
        assert problem.splitlines() == [problem], repr(problem)


HEX64 = re.compile(r"[0-9a-f]{64}")
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def check_load(document: Any, overrides: Any = None, key: Any = None) -> Manifest | None:
    """Load and check the outcome; the only exception allowed through is InvalidManifestError."""
    try:
        manifest = load_manifest(document, overrides=overrides, key=key)
    except InvalidManifestError as error:
        assert_one_line_problems(error.problems)
        assert error.message == "; ".join(error.problems)
        return None
    assert isinstance(manifest, Manifest)
    assert manifest.key and manifest.key == manifest.key.strip()
    assert manifest.document["deployment"]["key"] == manifest.key
    assert_valid_policy(manifest.policy)
    assert validate_combined(manifest.policy) == []
    assert manifest.restart.attempts >= 0 and manifest.restart.delay_ms >= 0
    assert manifest.reschedule.attempts >= 0
    ids = manifest.agent_ids()
    assert ids
    assert list(ids) == sorted(ids, key=runtime_order)
    for agent_id, agent in manifest.agents.items():
        assert agent.agent_id == agent_id
        assert HEX64.fullmatch(agent.digest)
    assert HEX64.fullmatch(manifest.spec_digest)
    assert HEX64.fullmatch(manifest.topology)
    # what loads is text throughout, and its names hold no control character (the worker and the writers need both)
    json.dumps(manifest.document, ensure_ascii=False).encode("utf-8")
    names = [manifest.key, *(a.node_id for a in manifest.agents.values())]
    names += [name for a in manifest.agents.values() for name in (*a.services, *a.checks)]
    assert not any(CONTROL.search(name) for name in names), names
    return manifest


# --- load_manifest on arbitrary values ------------------------------------------------------------------


@FUZZ
@given(document=JSON, overrides=overrides_st, key=key_st)
def test_r1_fuzz_arbitrary_values(document: Any, overrides: Any, key: Any) -> None:
    check_load(document, overrides, key)


@FUZZ
@given(document=st.dictionaries(keys, JSON, max_size=8), overrides=overrides_st, key=key_st)
def test_r1_fuzz_arbitrary_objects(document: dict[str, Any], overrides: Any, key: Any) -> None:
    check_load(document, overrides, key)


# --- load_manifest on mutated valid manifests ------------------------------------------------------------


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from paths(v, (*prefix, i))


def locate(document: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        document = document[step]
    return document


@st.composite
def mutated_manifests(draw: st.DrawFn, values: st.SearchStrategy[Any] = JSON) -> Any:
    document: Any = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        path = draw(st.sampled_from(list(paths(document))))
        target = locate(document, path)
        operation = draw(st.sampled_from(["replace", "delete", "insert"]))
        if operation == "insert" and isinstance(target, dict):
            target[draw(keys)] = draw(values)
        elif operation == "insert" and isinstance(target, list):
            target.insert(draw(st.integers(min_value=0, max_value=len(target))), draw(values))
        elif not path:
            document = draw(values)
        else:
            parent = locate(document, path[:-1])
            if operation == "delete":
                del parent[path[-1]]
            else:
                parent[path[-1]] = draw(values)
    return document


def test_r1_fuzz_base_manifest_is_valid() -> None:
    manifest = check_load(copy.deepcopy(VALID))
    assert manifest is not None
    assert manifest.agent_ids() == ("router", "sink", "worker-0", "worker-1", "worker-2")


@FUZZ
@given(document=mutated_manifests(), overrides=overrides_st, key=key_st)
def test_r1_fuzz_mutated_manifests(document: Any, overrides: Any, key: Any) -> None:
    check_load(document, overrides, key)


@FUZZ
@given(update=st.dictionaries(st.sampled_from(POLICY_FIELDS) | text, JSON, max_size=9))
def test_r2_fuzz_mutated_update_policy(update: dict[str, Any]) -> None:
    document = copy.deepcopy(VALID)
    document["policies"]["update"] = update
    manifest = check_load(document)
    if manifest is not None:
        # whatever validated must read back unchanged: normalization of a valid policy keeps every value
        for name in POLICY_FIELDS:
            if name in update and name not in ("strategy", "health_check"):
                value = getattr(manifest.policy, name)
                assert (value if name != "steps" else [step.to_json() for step in value]) == update[name]


@FUZZ
@given(document=mutated_manifests())
def test_r1_fuzz_loading_is_deterministic(document: Any) -> None:
    first = check_load(document)
    second = check_load(copy.deepcopy(document))
    if first is None:
        assert second is None
    else:
        assert second is not None
        assert (first.spec_digest, first.topology, first.policy) == (second.spec_digest, second.topology, second.policy)


# --- bounded inputs -------------------------------------------------------------------------------------


@FUZZ
@given(document=mutated_manifests(awkward_values), overrides=awkward_overrides)
def test_r1_fuzz_awkward_values_load_or_are_refused_in_one_line(document: Any, overrides: Any) -> None:
    """Values nested past MAX_DEPTH, numbers no float holds, text of any kind: InvalidManifestError with one-line
    problems, or a manifest, which never holds what must be refused."""
    manifest = check_load(document, overrides)
    if unfit(document) or unfit(overrides):
        assert manifest is None


@settings(max_examples=50, deadline=None)
@given(counts=st.lists(st.integers(min_value=1, max_value=3 * MAX_AGENTS), min_size=1, max_size=4))
def test_r1_fuzz_a_manifest_loads_exactly_when_its_agents_fit(counts: list[int]) -> None:
    nodes = [{"node_id": f"n{i}", "agent_type": "t", "count": count} for i, count in enumerate(counts)]
    manifest = check_load({"deployment": {"key": "k"}, "nodes": nodes})
    assert (manifest is not None) == (sum(counts) <= MAX_AGENTS)


# --- normalize ------------------------------------------------------------------------------------------


@FUZZ
@given(raw=st.dictionaries(st.sampled_from(POLICY_FIELDS) | keys, JSON, max_size=10))
def test_r2_fuzz_normalize_never_fails(raw: dict[str, Any]) -> None:
    policy = normalize(raw)
    assert_valid_policy(policy)
    assert set(policy.extra) == set(raw) - set(POLICY_FIELDS)


@FUZZ
@given(raw=JSON)
def test_r2_fuzz_normalize_non_mapping_or_anything(raw: Any) -> None:
    policy = normalize(raw)
    assert_valid_policy(policy)
    if not isinstance(raw, Mapping):
        assert policy == DEFAULT


@FUZZ
@given(
    raw=st.fixed_dictionaries(
        {},
        optional={
            "strategy": st.sampled_from(STRATEGIES),
            "health_check": st.sampled_from(HEALTH_CHECKS),
            "max_parallel": st.integers(min_value=0),
            "canary": st.integers(min_value=0),
            "min_healthy_ms": st.integers(min_value=0),
            "healthy_deadline_ms": st.integers(min_value=1),
            "progress_deadline_ms": st.integers(min_value=0),
            "auto_promote": st.booleans(),
            "auto_revert": st.booleans(),
        },
    )
)
def test_r2_fuzz_valid_fields_validate_and_normalize_to_themselves(raw: dict[str, Any]) -> None:
    assert validate_update(raw) == []
    policy = normalize(raw)
    for name, value in raw.items():
        assert getattr(policy, name) == value
    assert normalize(policy.to_json()) == policy


@FUZZ
@given(raw=JSON)
def test_r2_fuzz_validate_update_never_fails(raw: Any) -> None:
    problems = validate_update(raw)
    assert isinstance(problems, list)
    if problems:
        assert_one_line_problems(tuple(problems))
