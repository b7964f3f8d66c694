"""`watch --until` and `--timeout`, for scripts: stop at a status asked for (exit 0), at an end that is not one
(exit 1), or after the timeout (exit 4, one line); with `--grace` riding out a failover and with `--json`.

The world is moved by a driver thread (or not at all, for a deployment that never gets anywhere); the only waits
are the command's own, bounded by a `--timeout` where a bug could otherwise hang the test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import Stack
from tests.cli.test_deployment_cli import V1, V2, awaiting_canary, deploy, ok, stable
from tests.cli.test_failover import FOREVER, outage, warned
from tests.cli.test_watch import failing

FAST = ("--interval", "0.01")
BOUNDED = (*FAST, "--timeout", "30")  # a safety net: a wait that never ends fails the test with exit 4
CANARY = ("--strategy", "canary", "--canary", "1")
AWAITING = "Deployment dep_agent-api_2 awaiting_promotion: Deployment is running but requires manual promotion"


def gave_up(what: str, seen: str | None, timeout: str, follow: str | None = None) -> str:
    waited = f"{timeout} s (--timeout)"
    head = (
        f"no answer about {what} within {waited}" if seen is None else f"deployment {what} still {seen} after {waited}"
    )
    return (
        f"error: {head}; stopped waiting (the deployment goes on: "
        f"`mn-deploy deployment watch {follow or what}` follows it again)\n"
    )


# ---- --until -----------------------------------------------------------------------------------


def test_until_awaiting_promotion_returns_0_without_waiting_for_the_end(stack: Stack, tmp_path: Path) -> None:
    stable(stack, tmp_path, V1)
    ok(deploy(stack, tmp_path, V2, *CANARY))

    with stack.driving():  # the canary turns healthy; without a promotion the deployment never ends
        lines = ok(stack.cli("watch", "agent-api", "--until", "awaiting_promotion", *BOUNDED))

    assert lines[-1] == AWAITING
    assert lines[0].startswith("Watch: running")
    assert stack.record("agent-api")["status"] == "awaiting_promotion"


def test_until_a_status_the_deployment_is_in_returns_at_once(stack: Stack, tmp_path: Path) -> None:
    ok(deploy(stack, tmp_path, V1))

    lines = ok(stack.cli("watch", "agent-api", "--until", "paused, running", *BOUNDED))

    assert len(lines) == 2
    assert lines[0].startswith("Watch: running | primary 0/3 healthy, 3 placed | deadline ")
    assert lines[1] == "Deployment dep_agent-api_1 running: Deployment is running"


def test_until_successful_on_a_failing_deployment_exits_1(stack: Stack, tmp_path: Path) -> None:
    stable(stack, tmp_path, V1)
    ok(deploy(stack, tmp_path, V2))

    with stack.driving(failing("2")):
        result = stack.cli("watch", "dep_agent-api_2", "--until", "successful", *BOUNDED)

    assert (result.exit_code, result.stderr) == (1, "")
    assert result.stdout.splitlines()[-1] == (
        "Deployment dep_agent-api_2 failed: Failed due to unhealthy instances; "
        "next: mn-deploy deployment rollback agent-api --version 1"
    )


def test_until_failed_on_a_failing_deployment_exits_0(stack: Stack, tmp_path: Path) -> None:
    stable(stack, tmp_path, V1)
    ok(deploy(stack, tmp_path, V2))

    with stack.driving(failing("2")):
        lines = ok(stack.cli("watch", "dep_agent-api_2", "--until", "failed,cancelled", *BOUNDED))

    assert lines[-1].startswith("Deployment dep_agent-api_2 failed: Failed due to unhealthy instances")


def test_an_end_that_was_not_asked_for_exits_1_and_says_so(stack: Stack, tmp_path: Path) -> None:
    ok(deploy(stack, tmp_path, V1))  # rolling: it never awaits promotion

    with stack.driving():
        result = stack.cli("watch", "agent-api", "--until", "awaiting_promotion,paused", *BOUNDED)

    assert (result.exit_code, result.stderr) == (1, "")
    assert result.stdout.splitlines()[-1] == (
        "Deployment dep_agent-api_1 successful: Deployment completed successfully; "
        "ended without reaching awaiting_promotion or paused"
    )


def test_until_json_prints_the_record_in_the_status_asked_for(stack: Stack, tmp_path: Path) -> None:
    awaiting_canary(stack, tmp_path)

    lines = ok(stack.cli("watch", "agent-api", "--until", "awaiting_promotion", "--json", *BOUNDED))

    assert len(lines) == 1
    final = json.loads(lines[0])
    assert (final["deployment_id"], final["status"]) == ("dep_agent-api_2", "awaiting_promotion")
    assert [v["version"] for v in final["versions"]] == ["1", "2"]


def test_until_rides_out_a_failover(stack: Stack, tmp_path: Path) -> None:
    stable(stack, tmp_path, V1)
    ok(deploy(stack, tmp_path, V2, *CANARY))

    with outage(stack, range(2, 5)) as (cli, _):
        result = cli.cli("watch", "agent-api", "--until", "awaiting_promotion", *BOUNDED)

    assert (result.exit_code, result.stderr) == (0, warned(cli))
    assert result.stdout.splitlines()[-1] == AWAITING


# ---- --timeout ---------------------------------------------------------------------------------


def test_a_timeout_exits_4_with_one_line(stack: Stack, tmp_path: Path) -> None:
    ok(deploy(stack, tmp_path, V1))  # nothing moves the world: it stays running

    result = stack.cli("watch", "agent-api", "--until", "successful", *FAST, "--timeout", "0.3")

    assert (result.exit_code, result.stderr) == (4, gave_up("dep_agent-api_1", "running", "0.3"))
    [line] = result.stdout.splitlines()  # a line per change: nothing changed
    assert line.startswith("Watch: running | primary 0/3 healthy, 3 placed | deadline ")


def test_a_timeout_with_json_prints_nothing_on_stdout(stack: Stack, tmp_path: Path) -> None:
    ok(deploy(stack, tmp_path, V1))

    result = stack.cli("watch", "agent-api", "--json", *FAST, "--timeout", "0.2")

    assert (result.exit_code, result.stdout, result.stderr) == (4, "", gave_up("dep_agent-api_1", "running", "0.2"))


def test_deploy_wait_takes_a_timeout_too(stack: Stack, tmp_path: Path) -> None:
    result = deploy(stack, tmp_path, V1, "--wait", *FAST, "--timeout", "0.2")

    assert (result.exit_code, result.stderr) == (4, gave_up("dep_agent-api_1", "running", "0.2"))
    assert "Deployment: dep_agent-api_1" in result.stdout.splitlines()
    assert stack.deployment_ids() == ["dep_agent-api_1"]


def test_a_timeout_within_an_outage_is_the_timeout(stack: Stack, tmp_path: Path) -> None:
    ok(deploy(stack, tmp_path, V1))

    with outage(stack, FOREVER[1:]) as (cli, _):
        result = cli.cli("watch", "agent-api", *FAST, "--grace", "30", "--timeout", "0.3")

    assert result.exit_code == 4
    assert result.stderr == warned(cli) + gave_up("dep_agent-api_1", "running", "0.3")


@pytest.mark.parametrize("down", [FOREVER[1:], FOREVER], ids=["a-later-look", "the-first-look"])
def test_a_look_left_unanswered_is_bounded_by_the_timeout(stack: Stack, tmp_path: Path, down: range) -> None:
    """As a paused leader leaves it: the look does not wait its 5 s (or 15 s for the first) past the timeout."""
    ok(deploy(stack, tmp_path, V1))

    with outage(stack, down, code=None) as (cli, _):
        result = cli.cli("watch", "agent-api", *FAST, "--timeout", "0.3")

    assert result.exit_code == 4
    if down is FOREVER:
        assert (result.stdout, result.stderr) == ("", gave_up("agent-api", None, "0.3"))
    else:
        assert result.stderr == gave_up("dep_agent-api_1", "running", "0.3")


# ---- usage -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--until", "done"], "Invalid value for '--until': 'done' is not a status; use one or more of running,"),
        (["--until", "running,"], "Invalid value for '--until': '' is not a status;"),
        (["--until", ""], "Invalid value for '--until': '' is not a status;"),
        (["--until", "RUNNING"], "Invalid value for '--until': 'RUNNING' is not a status;"),
        (["--timeout", "0"], "Invalid value for '--timeout': 0.0 is not in the range x>0."),
        (["--timeout", "-1"], "Invalid value for '--timeout': -1.0 is not in the range x>0."),
        (["--timeout", "nan"], "Invalid value for '--timeout': 'nan' is not a finite number."),
        (["--timeout", "inf"], "Invalid value for '--timeout': 'inf' is not a finite number."),
    ],
)
def test_a_bad_until_or_timeout_is_one_line_and_exit_2(stack: Stack, args: list[str], message: str) -> None:
    result = stack.cli("watch", "agent-api", *args)

    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith(f"error: {message}")
    assert result.stderr.count("\n") == 1


def test_deploy_refuses_a_bad_timeout_before_sending_anything(stack: Stack, tmp_path: Path) -> None:
    result = deploy(stack, tmp_path, V1, "--wait", "--timeout", "0")

    assert (result.exit_code, result.stdout) == (2, "")
    assert stack.deployment_ids() == []
