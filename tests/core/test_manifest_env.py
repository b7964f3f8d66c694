"""R1: a node's `config.env`, the variables its agents get beside the worker's own, is refused when the manifest
is loaded unless every name is one a process can be given and every value a string it can hold."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mn_deploy_core.errors import InvalidManifestError
from mn_deploy_core.manifest import load_manifest
from mn_deploy_core.manifest_problems import WORKER_VARIABLES

NODE = 'node "job"'


def manifest(env: Any) -> dict[str, Any]:
    node = {"node_id": "job", "agent_type": "executor", "config": {"command": ["true"], "env": env}}
    return {"deployment": {"key": "app"}, "job_type": "batch", "nodes": [node]}


def problems_of(document: Any) -> tuple[str, ...]:
    with pytest.raises(InvalidManifestError) as info:
        load_manifest(document)
    return info.value.problems


def test_r1_config_env_of_names_and_strings_loads_as_given() -> None:
    env = {"MN_BATCH_OUT": "/srv/out", "_private": "", "PATH": "/opt/bin:/usr/bin", "LANG": "C.UTF-8", "A1": "é ="}

    loaded = load_manifest(manifest(env))

    assert loaded.document["nodes"][0]["config"]["env"] == env


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        (["A=1"], f"{NODE}: config.env must be an object of strings"),
        ("A=1", f"{NODE}: config.env must be an object of strings"),
        ({"A": 1}, f"{NODE}: config.env.A must be a string without NUL characters"),
        ({"A": None}, f"{NODE}: config.env.A must be a string without NUL characters"),
        ({"A": ["x"]}, f"{NODE}: config.env.A must be a string without NUL characters"),
        ({"A": "x\0y"}, f"{NODE}: config.env.A must be a string without NUL characters"),
        ({"": "x"}, f'{NODE}: config.env name "" must be letters, digits and _, not a digit first'),
        ({"1A": "x"}, f'{NODE}: config.env name "1A" must be letters, digits and _, not a digit first'),
        ({"A=B": "x"}, f'{NODE}: config.env name "A=B" must be letters, digits and _, not a digit first'),
        ({"A B": "x"}, f'{NODE}: config.env name "A B" must be letters, digits and _, not a digit first'),
        ({"PORT": "80"}, f"{NODE}: config.env.PORT is set by the worker"),
        ({"MN_INSTANCE_ID": "x"}, f"{NODE}: config.env.MN_INSTANCE_ID is set by the worker"),
    ],
)
def test_r1_a_bad_config_env_is_refused_in_one_line_naming_the_node(env: Any, problem: str) -> None:
    assert problems_of(manifest(env)) == (problem,)


def test_r1_every_config_env_problem_is_collected() -> None:
    env = {"HOME": "/root", "ok": "1", "bad name": "x", "N": 3}

    assert problems_of(manifest(env)) == (
        f"{NODE}: config.env.HOME is set by the worker",
        f'{NODE}: config.env name "bad name" must be letters, digits and _, not a digit first',
        f"{NODE}: config.env.N must be a string without NUL characters",
    )


@pytest.mark.parametrize("name", sorted(WORKER_VARIABLES))
def test_r1_no_variable_the_worker_sets_may_be_declared(name: str) -> None:
    assert problems_of(manifest({name: "x"})) == (f"{NODE}: config.env.{name} is set by the worker",)


@settings(max_examples=200, deadline=None)
@given(env=st.dictionaries(st.text(max_size=6), st.text(max_size=6) | st.integers(), max_size=4))
def test_r1_fuzz_config_env_loads_exactly_when_every_pair_can_reach_a_process(env: dict[str, Any]) -> None:
    def usable(name: str, value: Any) -> bool:
        portable = name[:1].isascii() and (name[:1].isalpha() or name[:1] == "_")
        rest = all(ch.isascii() and (ch.isalnum() or ch == "_") for ch in name)
        return portable and rest and name not in WORKER_VARIABLES and isinstance(value, str) and "\0" not in value

    if all(usable(name, value) for name, value in env.items()):
        assert load_manifest(manifest(env)).document["nodes"][0]["config"]["env"] == env
    else:
        assert len(problems_of(manifest(env))) == sum(not usable(n, v) for n, v in env.items())
