"""R1: what a worker or a writer would trip over later is refused when the manifest is loaded, in one line naming
the field, before anything is written: the fields of a service check, names holding control characters, and
text that is not Unicode (lone surrogates) anywhere in a document."""

from __future__ import annotations

import copy
import http.client
import json
import math
import os
from collections import OrderedDict
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.live.worker.checks import declared_checks
from mn_deploy_core.checks import MAX_CHECK_MS
from mn_deploy_core.errors import InvalidManifestError
from mn_deploy_core.limits import MAX_DEPTH, json_problem, parse_json
from mn_deploy_core.manifest import load_manifest
from mn_deploy_core.policy import display_value
from tests.awkward import awkward_values, depth
from tests.scripted import World, service_manifest

FUZZ = settings(max_examples=200, deadline=None)
NOT_TEXT = "holds text that is not Unicode (a lone surrogate, \\ud800 to \\udfff)"
NOT_FINITE = "holds a number that is not finite (NaN, Infinity, or over 1.8e308 in size)"
TOO_DEEP = f"nested more than {MAX_DEPTH} levels deep"
WHERE = 'node "web": services[0].checks[0]'


def manifest(*checks: Any, node_id: str = "web", service: Any = "web-http") -> dict[str, Any]:
    """One node serving one service with `checks`."""
    node = {"node_id": node_id, "agent_type": "executor", "services": [{"name": service, "checks": list(checks)}]}
    return {"deployment": {"key": "app"}, "job_type": "service", "nodes": [node]}


def problems_of(document: Any, **kwargs: Any) -> tuple[str, ...]:
    with pytest.raises(InvalidManifestError) as info:
        load_manifest(document, **kwargs)
    return info.value.problems


def control(text: str) -> bool:
    """C0, DEL or C1, by code point."""
    return any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in text)


def surrogate(value: Any) -> bool:
    """Whether a string in `value`, key or value, holds a lone surrogate (as JSON text gives them: unpaired)."""
    if isinstance(value, dict):
        return any(surrogate(k) or surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(map(surrogate, value))
    return isinstance(value, str) and any(0xD800 <= ord(ch) <= 0xDFFF for ch in value)


# --- check fields ---------------------------------------------------------------------------------------


def test_r1_check_fields_the_worker_reads_load() -> None:
    document = manifest(
        {"name": "health", "type": "http", "path": "/health?full=1", "interval_ms": 500, "timeout_ms": 1000},
        {"type": "http", "port": 8080, "path": "/"},
        {"type": "tcp", "port": 65535, "interval_ms": 1, "timeout_ms": MAX_CHECK_MS},
        {"type": "exec", "command": ["python3", "-c", "import sys\nsys.exit(0)"]},
        {"type": "tcp"},
    )
    agent = load_manifest(document).agents["web"]
    assert agent.checks == ("health", "web-http:1", "web-http:2", "web-http:3", "web-http:4")
    read = declared_checks(document["nodes"][0], agent.checks)
    assert [(c.type, c.interval_s, c.port, c.path) for c in read[:3]] == [
        ("http", 0.5, None, "/health?full=1"),
        ("http", 5.0, 8080, "/"),
        ("tcp", 0.001, 65535, "/"),
    ]
    assert read[3].command == ("python3", "-c", "import sys\nsys.exit(0)")


@pytest.mark.parametrize(
    ("check", "problem"),
    [
        ({"type": "http", "interval_ms": "abc"}, "interval_ms must be a positive integer, at most 86400000 (a day)"),
        ({"type": "http", "interval_ms": 0}, "interval_ms must be a positive integer, at most 86400000 (a day)"),
        ({"type": "tcp", "interval_ms": 500.0}, "interval_ms must be a positive integer, at most 86400000 (a day)"),
        ({"type": "tcp", "timeout_ms": True}, "timeout_ms must be a positive integer, at most 86400000 (a day)"),
        (
            {"type": "tcp", "timeout_ms": MAX_CHECK_MS + 1},
            "timeout_ms must be a positive integer, at most 86400000 (a day)",
        ),
        ({"type": "tcp", "timeout_ms": None}, "timeout_ms must be a positive integer, at most 86400000 (a day)"),
        ({"type": "tcp", "port": 0}, "port must be an integer from 1 to 65535"),
        ({"type": "http", "port": 65536}, "port must be an integer from 1 to 65535"),
        ({"type": "http", "port": "8080"}, "port must be an integer from 1 to 65535"),
        ({"type": "exec", "command": ["true"], "port": False}, "port must be an integer from 1 to 65535"),
        (
            {"type": "http", "path": "health"},
            'path must be a string starting with "/", of printable ASCII without spaces',
        ),
        ({"type": "http", "path": ""}, 'path must be a string starting with "/", of printable ASCII without spaces'),
        (
            {"type": "http", "path": "/a b"},
            'path must be a string starting with "/", of printable ASCII without spaces',
        ),
        (
            {"type": "http", "path": "/a\r\nX: y"},
            'path must be a string starting with "/", of printable ASCII without spaces',
        ),
        (
            {"type": "http", "path": "/del\x7f"},
            'path must be a string starting with "/", of printable ASCII without spaces',
        ),
        (
            {"type": "http", "path": "/nel\x85"},
            'path must be a string starting with "/", of printable ASCII without spaces',
        ),
        (
            {"type": "http", "path": "/caf\u00e9"},
            'path must be a string starting with "/", of printable ASCII without spaces',
        ),
        ({"type": "http", "path": ["/"]}, 'path must be a string starting with "/", of printable ASCII without spaces'),
        ({"type": "tcp", "path": 5}, 'path must be a string starting with "/", of printable ASCII without spaces'),
        ({"type": "exec"}, "command must be a non-empty list of strings without NUL characters"),
        ({"type": "exec", "command": []}, "command must be a non-empty list of strings without NUL characters"),
        ({"type": "exec", "command": "true"}, "command must be a non-empty list of strings without NUL characters"),
        (
            {"type": "exec", "command": ["sleep", 1]},
            "command must be a non-empty list of strings without NUL characters",
        ),
        ({"type": "exec", "command": ["a\x00b"]}, "command must be a non-empty list of strings without NUL characters"),
        ({"type": "tcp", "command": 5}, "command must be a non-empty list of strings without NUL characters"),
    ],
)
def test_r1_check_fields_are_validated_naming_the_check(check: dict[str, Any], problem: str) -> None:
    assert problems_of(manifest(check)) == (f"{WHERE}.{problem}",)


def test_r1_every_check_problem_is_collected() -> None:
    checks = [
        {
            "type": "grpc",
            "interval_ms": -1,
            "timeout_ms": "2s",
            "port": 70_000,
            "path": "x",
            "command": [],
            "name": "a\tb",
        },
        {"type": "exec", "command": ["ok"]},
        {"type": "exec", "command": [None]},
    ]
    assert problems_of(manifest(*checks)) == (
        f'{WHERE}.type has unsupported value "grpc"',
        f"{WHERE}.name must not hold control characters",
        f"{WHERE}.interval_ms must be a positive integer, at most 86400000 (a day)",
        f"{WHERE}.timeout_ms must be a positive integer, at most 86400000 (a day)",
        f"{WHERE}.port must be an integer from 1 to 65535",
        f'{WHERE}.path must be a string starting with "/", of printable ASCII without spaces',
        f"{WHERE}.command must be a non-empty list of strings without NUL characters",
        'node "web": services[0].checks[2].command must be a non-empty list of strings without NUL characters',
    )


RULES: dict[str, Callable[[Any], bool]] = {
    "interval_ms": lambda v: type(v) is int and 1 <= v <= MAX_CHECK_MS,
    "timeout_ms": lambda v: type(v) is int and 1 <= v <= MAX_CHECK_MS,
    "port": lambda v: type(v) is int and 1 <= v <= 65535,
    "path": lambda v: isinstance(v, str) and v.startswith("/") and all(0x21 <= ord(ch) <= 0x7E for ch in v),
    "command": lambda v: isinstance(v, list) and bool(v) and all(isinstance(a, str) and "\x00" not in a for a in v),
}
"""Independently of the code: when the live worker can use a check field's value."""

unicode_text = st.text(st.characters(codec="utf-8"), max_size=8)
"""Any text UTF-8 encodes (so no lone surrogates), control characters included."""
any_value = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, 65535, 65536, MAX_CHECK_MS, MAX_CHECK_MS + 1, 2**63, True, False, None, 500.0, "500"]),
    st.floats(allow_nan=False, allow_infinity=False),
    unicode_text,
    st.lists(unicode_text | st.integers(-9, 9) | st.none(), max_size=3),
    st.dictionaries(unicode_text, st.integers(), max_size=2),
)
near_ascii = st.sampled_from(["\x00", "\t", "\n", "\x1f", " ", "!", "~", "\x7f", "\x80", "\x9f", "\xa0", "\xe9"]) | (
    st.characters(max_codepoint=0xA0)
)
"""Printable ASCII and the characters around it: NUL and the other C0 controls, space, DEL, C1, NBSP, é."""
MS_EDGES = [-1, 0, 1, 2, MAX_CHECK_MS - 1, MAX_CHECK_MS, MAX_CHECK_MS + 1]
FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "interval_ms": st.sampled_from(MS_EDGES) | st.integers(min_value=-3, max_value=MAX_CHECK_MS + 3) | any_value,
    "timeout_ms": st.sampled_from(MS_EDGES) | st.integers(min_value=-3, max_value=MAX_CHECK_MS + 3) | any_value,
    "port": st.sampled_from([-1, 0, 1, 2, 65534, 65535, 65536])
    | st.integers(min_value=-3, max_value=70_000)
    | any_value,
    "path": st.builds("/a{}b".format, near_ascii)
    | st.builds("/".__add__, st.text(near_ascii, max_size=8))
    | st.builds("/".__add__, unicode_text)
    | st.text(near_ascii, max_size=3)
    | any_value,
    "command": st.lists(st.builds("a{}b".format, near_ascii), min_size=1, max_size=2)
    | st.lists(st.text(near_ascii, max_size=3) | unicode_text, max_size=3)
    | any_value,
}
"""Values at and around each field's bounds (one odd character in a path or an argument), and any other."""


@FUZZ
@pytest.mark.parametrize("field", sorted(RULES))
@given(kind=st.sampled_from(["http", "tcp", "exec"]), data=st.data())
def test_r1_fuzz_a_check_field_loads_exactly_when_the_worker_can_use_it(
    field: str, kind: str, data: st.DataObject
) -> None:
    value = data.draw(FIELD_VALUES[field], label=field)
    check: dict[str, Any] = {"type": kind, **({"command": ["true"]} if kind == "exec" else {}), field: value}
    document = manifest(check)
    before = copy.deepcopy(document)
    try:
        agent = load_manifest(document).agents["web"]
    except InvalidManifestError as error:
        assert not RULES[field](value)
        assert len(error.problems) == 1
        assert error.problems[0].startswith(f"{WHERE}.{field} must ")
        assert document == before
        return
    assert RULES[field](value)
    (read,) = declared_checks(document["nodes"][0], agent.checks)  # what used to raise ValueError on the worker
    http.client.HTTPConnection("127.0.0.1", 9).putrequest("GET", read.path)  # raises on what it cannot send
    assert all(b"\x00" not in os.fsencode(arg) for arg in read.command)


# --- names ----------------------------------------------------------------------------------------------

NAME_SLOTS = (
    "the call's key",
    "metadata.deployment_key",
    "deployment.key",
    "policies.deployment_key",
    "job_name",
    "graph_id",
    "node_id",
    "service name",
    "check name",
)


def named(slot: str, name: str) -> tuple[dict[str, Any], str | None, str]:
    """A valid manifest with `name` in `slot`: the document, the call's key and the problem a control character
    there gives."""
    document = manifest({"type": "tcp", "name": "port-open"})
    key = None
    if slot == "the call's key":
        key = name
    elif "." in slot:
        section, field = slot.split(".")
        document.setdefault(section, {})[field] = name
    elif slot in ("job_name", "graph_id"):
        document[slot] = name
    elif slot == "node_id":
        document["nodes"][0]["node_id"] = name
        return document, key, f'node "{display_value(name)}": node_id must not hold control characters'
    elif slot == "service name":
        document["nodes"][0]["services"][0]["name"] = name
        return document, key, 'node "web": services[0].name must not hold control characters'
    else:
        document["nodes"][0]["services"][0]["checks"][0]["name"] = name
        return document, key, 'node "web": services[0].checks[0].name must not hold control characters'
    return document, key, f"{slot} must not hold control characters"


@pytest.mark.parametrize("slot", NAME_SLOTS)
@pytest.mark.parametrize("name", ["x\x00y", "x\ny", "\x1b[31mred", "tab\t", "del\x7f", "nel\x85", "csi\x9b", "c1\x80"])
def test_r1_names_holding_control_characters_are_refused_naming_the_field(slot: str, name: str) -> None:
    document, key, problem = named(slot, name)
    before = copy.deepcopy(document)
    assert problems_of(document, key=key) == (problem,)
    assert document == before


@pytest.mark.parametrize("slot", NAME_SLOTS)
@pytest.mark.parametrize(
    "name", ["caf\u00e9", "\u65e5\u672c-1", "emoji-\U0001f600", "zwj\u200d", "nbsp\u00a0x", "ls\u2028"]
)
def test_r1_names_of_other_characters_load(slot: str, name: str) -> None:
    document, key, _ = named(slot, name)
    manifest_ = load_manifest(document, key=key)
    if slot in ("the call's key", "metadata.deployment_key"):
        assert manifest_.key == name.strip()


names = st.text(st.characters(codec="utf-8"), max_size=6) | st.sampled_from(
    ["", " ", "\t", "\x1c", "\x85", "a\x00", "\x7f", "\x9f", "\u2028"]
)


REQUIRED = ("deployment.key", "node_id", "service name")
"""Names that must not be blank; a blank key source is skipped (never the key) and a blank check name
defaults to `<service>:<index>`."""


def refused(slot: str, name: str) -> bool:
    blank = not name.strip()
    if slot == "check name":
        return control(name)
    return blank if slot in REQUIRED and blank else not blank and control(name)


@FUZZ
@given(slot=st.sampled_from(NAME_SLOTS), name=names)
def test_r1_fuzz_a_name_loads_exactly_when_it_holds_no_control_character(slot: str, name: str) -> None:
    document, key, problem = named(slot, name)
    try:
        load_manifest(document, key=key)
    except InvalidManifestError as error:
        assert refused(slot, name)
        if name.strip():
            assert error.problems == (problem,)
    else:
        assert not refused(slot, name)


# --- text that is not Unicode ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "place",
    [
        lambda d: d["nodes"][0].update(config={"greeting": "hi \ud800"}),
        lambda d: d["nodes"][0].update(config={"\udfff": 1}),
        lambda d: d["nodes"][0].update(config={"deep": [[[{"x": ["ok", "\ude00\ud83d"]}]]]}),
        lambda d: d["deployment"].update(key="app\udc80"),
        lambda d: d["nodes"][0].update(node_id="web\ud800"),
        lambda d: d.update({"\ud800": "unknown field"}),
    ],
)
def test_r1_text_that_is_not_unicode_is_refused_anywhere_alone(place: Callable[[dict[str, Any]], None]) -> None:
    document = manifest({"type": "tcp"})
    place(document)
    document["nodes"].append({"node_id": ["not", "a", "string"]})  # not looked at: the text problem comes alone
    before = copy.deepcopy(document)
    assert problems_of(document) == (f"manifest: {NOT_TEXT}",)
    assert problems_of(manifest({"type": "tcp"}), overrides={"note": ["\ud800"]}) == (
        f"update policy overrides: {NOT_TEXT}",
    )
    assert problems_of(manifest({"type": "tcp"}), key="app\ud800") == (f"the call's key: {NOT_TEXT}",)
    assert document == before


@pytest.mark.parametrize("text", ['"\\ud800"', '{"\\udfff": 1}', '["a\\ude00\\ud83d"]', '{"k": ["\\ud83d"]}'])
def test_r1_parse_json_refuses_lone_surrogates_in_one_line(text: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_json(text)
    assert not isinstance(raised.value, json.JSONDecodeError)
    assert str(raised.value) == NOT_TEXT


def test_r1_parse_json_reads_surrogate_pairs_as_the_characters_they_make() -> None:
    assert parse_json('{"\\ud83d\\ude00": "\\ud83d\\ude80 caf\\u00e9"}') == {"\U0001f600": "\U0001f680 caf\u00e9"}


class Text(str):
    pass


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (OrderedDict(a=Text("\ud800")), NOT_TEXT),
        (MappingProxyType({"k": ("x", "\udfff")}), NOT_TEXT),
        ({Text("\ud800"): 1}, NOT_TEXT),
        ((1, [2.5, {"k": float("nan")}]), NOT_FINITE),
        ([True, None, 2**1023, -(2**1023)], None),
        ([2**1024 - 2**970 - 1], None),  # the largest integer a float still holds
        ([-(2**1024 - 2**970)], NOT_FINITE),
        ([Text("caf\u00e9"), b"\xff", "\U0001f600"], None),
    ],
)
def test_r1_json_problem_walks_any_python_value(value: Any, problem: str | None) -> None:
    assert json_problem(value) == problem


def expected_problems(value: Any) -> set[str]:
    """Every problem `value` has, worked out recursively."""
    found = set()
    if depth(value) > MAX_DEPTH:
        found.add(TOO_DEEP)
    if surrogate(value):
        found.add(NOT_TEXT)

    def not_finite(v: Any) -> bool:
        if isinstance(v, dict):
            return any(map(not_finite, v.values()))
        if isinstance(v, list):
            return any(map(not_finite, v))
        try:
            return isinstance(v, int | float) and not math.isfinite(float(v))
        except OverflowError:
            return True

    if not_finite(value):
        found.add(NOT_FINITE)
    return found


@FUZZ
@given(value=awkward_values)
def test_r1_fuzz_json_problem_finds_a_problem_exactly_when_a_recursive_walk_does(value: Any) -> None:
    expected = expected_problems(value)
    problem = json_problem(value)
    assert (problem is None) == (not expected)
    assert problem is None or problem in expected


json_text = st.text(st.characters(exclude_categories=()), max_size=6)
text_documents = st.recursive(
    json_text | st.integers(-5, 5) | st.none() | st.booleans(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(json_text, inner, max_size=3),
    max_leaves=12,
)


@FUZZ
# config.env has rules of its own (test_manifest_env.py), so it is left out here
@given(config=st.dictionaries(json_text.filter(lambda name: name != "env"), text_documents, max_size=4))
def test_r1_fuzz_a_manifest_with_odd_text_loads_exactly_when_it_is_unicode(config: dict[str, Any]) -> None:
    document = manifest({"type": "tcp"})
    document["nodes"][0]["config"] = config
    text = json.dumps(document)
    if surrogate(config):
        assert problems_of(document) == (f"manifest: {NOT_TEXT}",)
        with pytest.raises(ValueError, match="not Unicode"):
            parse_json(text)
    else:
        loaded = load_manifest(parse_json(text))
        json.dumps(loaded.document, ensure_ascii=False).encode("utf-8")  # what a writer does: it cannot fail


# --- a refused manifest changes nothing -----------------------------------------------------------------


def bad_check(document: dict[str, Any]) -> None:
    document["nodes"][0]["services"][0]["checks"][0]["interval_ms"] = "abc"


def control_in_key(document: dict[str, Any]) -> None:
    document["deployment"]["key"] = "agent-api\x00"


def control_in_node_id(document: dict[str, Any]) -> None:
    document["nodes"][0]["node_id"] = "worker\x1b"


def not_unicode(document: dict[str, Any]) -> None:
    document["nodes"][0]["config"]["image"] = "agent:\ud800"


@pytest.mark.parametrize("spoil", [bad_check, control_in_key, control_in_node_id, not_unicode])
def test_r1_a_manifest_refused_for_a_check_a_name_or_its_text_changes_nothing(
    spoil: Callable[[dict[str, Any]], None],
) -> None:
    world = World.settled(service_manifest("agent:1"))

    def state() -> Any:
        store = world.store
        return (
            [r.to_json() for r in store.list_deployments()],
            [v.to_json() for v in store.list_versions("agent-api")],
            [i.to_json() for i in store.list_instances()],
            list(world.runtime.order),
            list(world.runtime.stopped),
        )

    before = state()
    document = service_manifest("agent:2")
    spoil(document)
    kept = copy.deepcopy(document)
    with pytest.raises(InvalidManifestError):
        world.deploy(document)
    assert state() == before
    assert document == kept
    record = world.deploy(service_manifest("agent:2"))
    assert (record.deployment_id, record.target_version) == ("dep_agent-api_2", "2")
