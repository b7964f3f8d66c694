"""A base install runs the simulator and lists every command; a live command without the `live` extra says, in one
line, what to install. "Without the extra" is a fresh interpreter in which redis, grpc and protobuf cannot be
imported (.ci/run checks the same in a venv that never had them); "with" is this venv."""

from __future__ import annotations

import os
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from mn_deploy.cli import LIVE, main
from mn_deploy.extras import Deferred, ExtrasGroup, needs_extra
from tests.docs.markdown import ROOT

WITHOUT_LIVE = """
import sys

class Absent:
    '''The `live` extra's packages, as if never installed.'''
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("redis", "grpc") or name.startswith("google.protobuf"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Absent())
from mn_deploy.cli import main
main()
"""
HINT = "error: this command needs the live extra: pip install 'mn-deploy[live]'\n"


def without_live(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MPLBACKEND": "Agg"}
    command = [sys.executable, "-c", WITHOUT_LIVE, *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_help_lists_every_command_without_the_live_extra() -> None:
    done = without_live("--help")
    assert done.returncode == 0, done.stderr
    for name, deferred in LIVE.items():
        assert name in done.stdout
        assert deferred.summary.split()[0] in done.stdout
    assert "sim" in done.stdout


def test_the_simulation_quickstart_runs_without_the_live_extra() -> None:
    done = without_live("sim", "run", "examples/scenarios/canary-manual-promote.json")
    assert done.returncode == 0, done.stderr
    assert "Scenario: canary-manual-promote" in done.stdout
    assert "Deployment: dep_agent-api_2 | 2 | successful" in done.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("deployment", "status", "hello"),
        ("deployment", "deploy", "examples/bundles/hello/v1.json", "--wait"),
        ("deployment", "logs", "hello", "--no-such-option"),
        ("dev", "up"),
        ("controller",),
        ("agent", "run"),
        ("service", "list", "agent-api"),
    ],
    ids=" ".join,
)
def test_a_live_command_without_the_extra_names_it_in_one_line(args: tuple[str, ...]) -> None:
    done = without_live(*args)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", HINT)


@pytest.mark.parametrize("args", [("deployment", "--help"), ("deployment", "status", "--help"), ("dev", "-h")])
def test_a_live_commands_help_without_the_extra_says_what_it_is_and_what_to_install(args: tuple[str, ...]) -> None:
    done = without_live(*args)
    assert done.returncode == 0, done.stderr
    assert LIVE[args[0]].summary in done.stdout
    assert "Needs the `live` extra: pip install 'mn-deploy[live]'" in done.stdout


@pytest.mark.parametrize("name", sorted(LIVE))
def test_each_live_summary_is_its_commands_own(name: str) -> None:
    """The listing shows these summaries without importing the groups: they must not drift from the real ones."""
    command = LIVE[name].load()
    assert command.get_short_help_str(limit=1000) == LIVE[name].summary


def test_with_the_extra_the_live_groups_are_the_real_ones_with_their_attached_commands() -> None:
    deployment = main.get_command(click.Context(main), "deployment")
    assert isinstance(deployment, click.Group)
    assert {"status", "deploy", "logs", "export", "plot", "plan"} <= set(deployment.commands)
    listing = CliRunner().invoke(main, ["deployment", "--help"])
    assert listing.exit_code == 0
    assert "Needs the `live` extra" not in listing.output
    assert "promote" in listing.output


def test_another_missing_module_is_not_mistaken_for_the_extra() -> None:
    """A missing module of ours is a bug to show, not an extra to install."""
    group = ExtrasGroup(deferred={"broken": Deferred("mn_deploy.no_such_module:x", "Broken.", "live")})
    with pytest.raises(ModuleNotFoundError, match=r"mn_deploy\.no_such_module"):
        group.get_command(click.Context(group), "broken")


@settings(max_examples=200, deadline=None)
@given(args=st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=300), max_size=40))
def test_fuzz_whatever_a_live_command_is_given_without_the_extra_it_answers_the_one_line(args: list[str]) -> None:
    """The stand-in parses nothing: odd characters, option-like words, huge or many arguments all get the hint."""
    if {"-h", "--help"} & set(args):
        args = [a for a in args if a not in ("-h", "--help")]
    stand_in = needs_extra("deployment", LIVE["deployment"])
    result = CliRunner().invoke(stand_in, args)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", HINT)
