"""The operator's CLI against a real `mn-deploy dev up` (redis-server, a controller daemon, a worker running the
example bundles' HTTP agents): every command, bad inputs, an auto-revert, and the official `mn` CLI, end to end."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from backends.loopback import free_port
from mn_deploy.live_cli import mn_deploy_command
from tests.cli.conftest import Cli
from tests.cli.test_deployment_cli import ok
from tests.cli.test_mn_compat import mn, mn_ok
from tests.dev_up_output import dev_up_lines
from tests.polling import wait_for

BUNDLES = Path(__file__).resolve().parents[2] / "examples" / "bundles"
FAST = ("--interval", "0.1")


@pytest.fixture(scope="module")
def dev_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    """`mn-deploy dev up` with one worker, as a user starts it; it prints `grpc: <address>` and the `token-file:`
    every call must carry the token of once it is ready."""
    workdir = tmp_path_factory.mktemp("dev")
    address = f"127.0.0.1:{free_port()}"
    command = [*mn_deploy_command(), "dev", "up", "--workers", "1", "--grpc", address, "--workdir", str(workdir)]
    with (workdir / "dev-up.log").open("w") as log:
        up = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True)
    try:
        printed = dev_up_lines(up.stdout)  # once ready; EOF if it failed
        assert printed.get("grpc") == address, (workdir / "dev-up.log").read_text()
        yield Cli(address, token_file=Path(printed["token-file"]))
    finally:
        up.send_signal(signal.SIGTERM)  # dev up stops every process it started
        try:
            up.wait(30)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait()


def deploy(stack: Cli, bundle: str, key: str, *flags: str) -> Result:
    return stack.cli("deploy", str(BUNDLES / bundle), "--key", key, *flags, *FAST)


def status(stack: Cli, key: str) -> dict[str, Any]:
    return json.loads(ok(stack.cli("status", key, "--json"))[0])


def test_deploy_wait_then_status(dev_stack: Cli) -> None:
    lines = ok(deploy(dev_stack, "hello/v1.json", "waited", "--wait"))

    assert lines[-1] == f"Deployment {status(dev_stack, 'waited')['deployment_id']} successful: " + (
        "Deployment completed successfully"
    )
    fields = ok(dev_stack.cli("status", "waited"))
    assert "Status: successful" in fields
    assert "Primary: 2/2 healthy, 2 placed" in fields
    assert "Next: mn-deploy deployment history waited" in fields


def test_canary_promote_then_rollback(dev_stack: Cli) -> None:
    ok(deploy(dev_stack, "hello/v1.json", "canaried", "--wait"))
    ok(deploy(dev_stack, "hello/v2.json", "canaried", "--strategy", "canary", "--canary", "1"))

    wait_for(lambda: status(dev_stack, "canaried")["status"] == "awaiting_promotion", 30.0, "the canary to be healthy")
    assert "Canary: 1/1 healthy, 1 placed" in ok(dev_stack.cli("status", "canaried"))
    assert "Status: running" in ok(dev_stack.cli("promote", "canaried"))
    assert ok(dev_stack.cli("watch", "canaried", *FAST))[-1].endswith("successful: Deployment completed successfully")

    rolled = ok(dev_stack.cli("rollback", "canaried", "--reason", "greeting regressed"))
    assert "Rollback: 2 -> 1: greeting regressed" in rolled
    ok(dev_stack.cli("watch", "canaried", *FAST))
    history = ok(dev_stack.cli("history", "canaried"))
    assert history[0].startswith("# Version: version | stable")
    assert [row.split(" | ")[:3] for row in history[1:]] == [
        ["Version: 1", "stable", "deploy"],
        ["Version: 2", "stable", "deploy"],
        ["Version: 3", "stable", "rollback"],
    ]


def test_a_broken_release_fails_the_wait_and_reverts(dev_stack: Cli) -> None:
    ok(deploy(dev_stack, "hello/v1.json", "broken", "--wait"))

    result = deploy(dev_stack, "hello/v2-broken.json", "broken", "--wait", "--healthy-deadline-ms", "2000")

    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines()[-1].endswith(
        "failed: Failed due to unhealthy instances - rolling back to version 1; next: mn-deploy deployment watch broken"
    )
    ok(dev_stack.cli("watch", "broken", *FAST))
    assert status(dev_stack, "broken")["rollback"]["to_version"] == "1"


def test_list_events_pause_resume_and_fail(dev_stack: Cli) -> None:
    ok(deploy(dev_stack, "hello/v1.json", "operated", "--wait"))
    ok(deploy(dev_stack, "hello/v2.json", "operated", "--strategy", "canary", "--canary", "1"))
    wait_for(lambda: status(dev_stack, "operated")["status"] == "awaiting_promotion", 30.0, "the canary to be healthy")

    listed = [json.loads(line) for line in ok(dev_stack.cli("list", "--key", "operated", "--json"))]
    assert [d["status"] for d in listed[0]["data"]] == ["successful", "awaiting_promotion"]
    assert any("deployment_canary_ready" in line for line in ok(dev_stack.cli("events", "operated")))
    assert "Status: paused" in ok(dev_stack.cli("pause", "operated", "--reason", "hold on"))
    assert "Status: awaiting_promotion" in ok(dev_stack.cli("resume", "operated"))
    canary = status(dev_stack, "operated")["deployment_id"]
    assert "Status: failed" in ok(dev_stack.cli("fail", "operated", "--reason", "bad metrics"))
    # the bundles have auto_revert on: version 1 still serves, so the revert is a noop (R10)
    assert status(dev_stack, canary)["description"] == "Deployment marked as failed - rolling back to version 1"
    assert status(dev_stack, "operated")["description"] == "Deployment contained no runtime changes"


def test_bad_inputs_are_one_line_and_change_nothing(dev_stack: Cli, tmp_path: Path) -> None:
    ok(deploy(dev_stack, "hello/v1.json", "guarded", "--wait"))
    before = ok(dev_stack.cli("list", "--json"))
    unsafe = tmp_path / "unsafe"
    (unsafe / "payloads").mkdir(parents=True)
    (unsafe / "manifest.json").write_text((BUNDLES / "hello" / "v1.json").read_text())
    (unsafe / "payloads" / "escape").symlink_to(tmp_path)
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{")

    for args, message in [
        (("deploy", str(tmp_path / "missing")), "Bundle not found"),
        (("deploy", str(unsafe)), "Unsafe payload path: escape"),
        (("deploy", str(bad_json)), "is not valid JSON"),
        (("status", "nope"), "deployment nope was not found"),
        (("promote", "guarded"), "it can't be promoted"),
        (("deploy", str(BUNDLES / "hello" / "v1.json"), "--key", "guarded", "--canary", "-1"), "--canary"),
    ]:
        result = dev_stack.cli(*args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stdout == "" and len(result.stderr.splitlines()) == 1 and message in result.stderr, result.stderr

    assert ok(dev_stack.cli("list", "--json")) == before


def test_the_official_mn_cli_drives_the_dev_stack(dev_stack: Cli, tmp_path: Path) -> None:
    bundle = str(BUNDLES / "hello" / "v1.json")
    assert "Deployment deploy successful." in mn_ok(dev_stack, tmp_path, "deploy", bundle, "--key", "official")
    wait_for(lambda: status(dev_stack, "official")["status"] == "successful", 30.0, "the deployment to succeed")
    assert json.loads(mn_ok(dev_stack, tmp_path, "status", "official"))["status"] == "successful"
    assert mn(dev_stack, tmp_path, "status", "nope").returncode == 2
    assert mn(dev_stack, tmp_path, "promote", "official").returncode == 2
