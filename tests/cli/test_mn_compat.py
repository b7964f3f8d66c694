"""The official `mn` CLI (mirrorneuron-cli, a dev dependency) against the same stack as ours: every deployment
command works, and it exits as ours does: 0, and 2 for what is not found or invalid."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import Cli, Stack, write_bundle
from tests.cli.test_deployment_cli import V1, V2, deploy, ok, stable
from tests.scripted import service_manifest


def mn(stack: Cli, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`mn deployment ARGS` from this venv; MN_HOME keeps its config and logs in the test's directory."""
    settings = {
        **os.environ,
        "MN_GRPC_TARGET": stack.target,
        "MN_HOME": str(tmp_path / "mn_home"),
        "MN_CLI_OUTPUT": "plain",
        "NO_COLOR": "1",
        **stack.auth_env(),
    }
    env = {name: value for name, value in settings.items() if value is not None}  # None: not set
    command = [str(Path(sys.executable).with_name("mn")), "deployment", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def mn_ok(stack: Cli, tmp_path: Path, *args: str) -> str:
    done = mn(stack, tmp_path, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_mn_runs_a_whole_rollout_on_our_controller(stack: Stack, tmp_path: Path) -> None:
    v1 = write_bundle(tmp_path / "v1", V1, {"input.json": b"{}"})
    v2 = write_bundle(tmp_path / "v2", V2)

    assert "Deployment deploy successful." in mn_ok(stack, tmp_path, "deploy", str(v1), "--key", "agent-api")
    stack.settle()
    mn_ok(stack, tmp_path, "deploy", str(v2), "--key", "agent-api", "--strategy", "canary", "--canary", "1")
    stack.settle()

    status = json.loads(mn_ok(stack, tmp_path, "status", "agent-api"))
    listing = json.loads(mn_ok(stack, tmp_path, "list"))
    assert status["status"] == "awaiting_promotion"
    assert [d["deployment_id"] for d in listing["data"]] == ["dep_agent-api_1", "dep_agent-api_2"]
    assert "Status: awaiting_promotion" in ok(stack.cli("status", "agent-api"))

    assert "Status: running" in mn_ok(stack, tmp_path, "promote", "agent-api")
    stack.settle()
    assert stack.record("agent-api")["status"] == "successful"

    assert "Deployment rollback successful." in mn_ok(stack, tmp_path, "rollback", "agent-api", "--reason", "slow")
    assert stack.record("agent-api")["rollback"] == {"from_version": "2", "to_version": "1", "reason": "slow"}
    stack.settle()

    mn_ok(stack, tmp_path, "deploy", str(write_bundle(tmp_path / "v4", service_manifest("agent:4"))))
    assert "Status: paused" in mn_ok(stack, tmp_path, "pause", "agent-api", "--reason", "hold")
    assert "Status: running" in mn_ok(stack, tmp_path, "resume", "agent-api")
    assert "Status: failed" in mn_ok(stack, tmp_path, "fail", "agent-api", "--reason", "bad metrics")
    assert stack.record("agent-api")["description"] == "Deployment marked as failed"
    assert "Status: failed" in ok(stack.cli("status", "dep_agent-api_4"))


@pytest.mark.parametrize(
    "command",
    [
        ["status", "no-such-app"],
        ["promote", "no-such-app"],
        ["pause", "no-such-app"],
        ["promote", "agent-api"],  # running, not awaiting promotion
        ["pause", "dep_agent-api_1"],  # successful: terminal
        ["rollback", "agent-api", "--version", "9"],
    ],
)
def test_mn_and_ours_exit_2_for_not_found_and_invalid(stack: Stack, tmp_path: Path, command: list[str]) -> None:
    stable(stack, tmp_path, V1)
    ok(deploy(stack, tmp_path, V2))
    before = stack.record("agent-api")

    theirs = mn(stack, tmp_path, *command)
    ours = stack.cli(*command)

    assert (theirs.returncode, ours.exit_code) == (2, 2), theirs.stdout + theirs.stderr
    assert stack.record("agent-api") == before


def test_mn_and_ours_exit_2_for_an_invalid_manifest(stack: Stack, tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "bad", service_manifest(update={"max_parallel": -1}))

    theirs = mn(stack, tmp_path, "deploy", str(bundle))
    ours = stack.cli("deploy", str(bundle))

    assert (theirs.returncode, ours.exit_code) == (2, 2), theirs.stdout + theirs.stderr
    assert stack.deployment_ids() == []
