"""Dotted-path overrides of a scenario document, their `--set` form, and the replay command built from them."""

from __future__ import annotations

import shlex
from typing import Any

import pytest

from sim.overrides import PathError, format_assignment, parse_assignment, with_overrides
from sim.reproduce import reproduce_command

DOCUMENT: dict[str, Any] = {
    "manifests": {"v2": {"nodes": [{"count": 3}], "policies": {"update": {"max_parallel": 1}}}},
    "behaviors": {"v2": {"start_failure": 0.1}},
}


def test_overrides_set_nested_keys_and_list_items_in_a_copy() -> None:
    changed = with_overrides(
        DOCUMENT,
        {
            "manifests.v2.policies.update.max_parallel": 4,
            "manifests.v2.nodes.0.count": 50,
            "behaviors.v2": {"start_failure": 0.5},
        },
    )
    assert changed["manifests"]["v2"]["policies"]["update"]["max_parallel"] == 4
    assert changed["manifests"]["v2"]["nodes"][0]["count"] == 50
    assert changed["behaviors"]["v2"] == {"start_failure": 0.5}
    assert DOCUMENT["manifests"]["v2"]["policies"]["update"]["max_parallel"] == 1
    assert DOCUMENT["manifests"]["v2"]["nodes"][0]["count"] == 3


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        (
            "manifests.v2.policies.update.max_paralel",
            'not in the scenario (no "max_paralel" at $.manifests.v2.policies.update)',
        ),
        ("manifests.v9.nodes", 'not in the scenario (no "v9" at $.manifests)'),
        ("manifests.v2.nodes.1.count", 'not in the scenario (no "1" at $.manifests.v2.nodes)'),
        ("manifests.v2.nodes.x", 'not in the scenario (no "x" at $.manifests.v2.nodes)'),
        ("behaviors.v2.start_failure.mean", 'not in the scenario (no "mean" at $.behaviors.v2.start_failure)'),
    ],
)
def test_a_path_that_names_nothing_is_an_error_saying_where_it_stopped(path: str, problem: str) -> None:
    with pytest.raises(PathError) as raised:
        with_overrides(DOCUMENT, {path: 1})
    assert (raised.value.path, raised.value.problem) == (path, problem)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("a.b=4", ("a.b", 4)),
        ("a.b=0.25", ("a.b", 0.25)),
        ("a.b=true", ("a.b", True)),
        ('a.b={"const": 5}', ("a.b", {"const": 5})),
        ("a.b=canary", ("a.b", "canary")),
        ('a.b="4"', ("a.b", "4")),
        ("a.b=x=y", ("a.b", "x=y")),
    ],
)
def test_assignments_read_json_else_text_and_round_trip(text: str, parsed: tuple[str, Any]) -> None:
    assert parse_assignment(text) == parsed
    assert parse_assignment(format_assignment(*parsed)) == parsed


@pytest.mark.parametrize("text", ["a.b", "=4"])
def test_an_assignment_needs_a_path_and_an_equals_sign(text: str) -> None:
    with pytest.raises(PathError, match="expected PATH=VALUE"):
        parse_assignment(text)


def test_the_replay_command_is_quoted_for_the_shell() -> None:
    command = reproduce_command(
        "my scenarios/s.json", 123, {"actions.1.overrides.strategy": "canary", "a.b": 0.5}, until_ms=90000.0
    )
    assert command == (
        "mn-deploy sim run 'my scenarios/s.json' --set 'actions.1.overrides.strategy=\"canary\"' "
        "--set a.b=0.5 --seed 123 --until-ms 90000"
    )
    words = shlex.split(command)
    assert [parse_assignment(words[i + 1]) for i, w in enumerate(words) if w == "--set"] == [
        ("actions.1.overrides.strategy", "canary"),
        ("a.b", 0.5),
    ]
    assert reproduce_command("s.json", 7) == "mn-deploy sim run s.json --seed 7"
