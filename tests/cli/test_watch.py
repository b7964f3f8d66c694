"""`watch`, `deploy --wait` and `events --follow` while a driver thread moves the scripted world on, as the
daemon's driver would: they end when the deployment ends, with exit 0 for success and 1 otherwise."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from mn_deploy_core.ports import FactKind
from tests.cli.conftest import Stack
from tests.cli.test_deployment_cli import V1, V2, deploy, ok, stable
from tests.scripted import World, service_manifest

FAST = ("--interval", "0.01")


def failing(version: str) -> Callable[[World], None]:
    """A driver step: instances of `version` fail as soon as they are placed; the others come up healthy."""

    def doomed(world: World) -> list[str]:
        return [i for i in world.fresh() if world.runtime.placements[i].deployment_version == version]

    def step(world: World) -> None:
        while instance_ids := doomed(world):  # a failure places a replacement at once, which fails in turn
            for instance_id in instance_ids:
                world.report(instance_id, FactKind.FAILED)
                world.reported.add(instance_id)
        world.converge()

    return step


def test_watch_follows_a_rollout_to_success(stack: Stack, tmp_path: Path) -> None:
    ok(deploy(stack, tmp_path, V1))

    with stack.driving():
        result = stack.cli("watch", "agent-api", *FAST)

    lines = ok(result)
    assert lines[-2:] == [
        "Watch: successful | primary 3/3 healthy, 3 placed",
        "Deployment dep_agent-api_1 successful: Deployment completed successfully",
    ]
    assert all(line.startswith("Watch: ") for line in lines[:-1])


def test_watch_of_a_failing_rollout_exits_1_and_says_what_next(stack: Stack, tmp_path: Path) -> None:
    stable(stack, tmp_path, V1)
    ok(deploy(stack, tmp_path, V2))

    with stack.driving(failing("2")):
        result = stack.cli("watch", "dep_agent-api_2", *FAST)

    assert result.exit_code == 1
    assert result.stdout.splitlines()[-1] == (
        "Deployment dep_agent-api_2 failed: Failed due to unhealthy instances; "
        "next: mn-deploy deployment rollback agent-api --version 1"
    )


def test_an_auto_revert_is_named_and_watched_next(stack: Stack, tmp_path: Path) -> None:
    stable(stack, tmp_path, V1)

    with stack.driving(failing("2")):
        result = deploy(stack, tmp_path, V2, "--auto-revert", "--wait", *FAST)

    assert result.exit_code == 1
    assert result.stdout.splitlines()[-1] == (
        "Deployment dep_agent-api_2 failed: Failed due to unhealthy instances - rolling back to version 1; "
        "next: mn-deploy deployment watch agent-api"
    )
    with stack.driving():
        ok(stack.cli("watch", "agent-api", *FAST))
    assert stack.record("agent-api")["rollback"]["to_version"] == "1"


def test_watch_of_a_cancelled_deployment_exits_1(stack: Stack, tmp_path: Path) -> None:
    stable(stack, tmp_path, V1)
    ok(deploy(stack, tmp_path, V2))
    ok(deploy(stack, tmp_path, service_manifest("agent:3")))

    result = stack.cli("watch", "dep_agent-api_2", *FAST)

    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "Watch: cancelled | primary 0/3 healthy, 1 placed",
        "Deployment dep_agent-api_2 cancelled: Cancelled due to newer version; "
        "next: mn-deploy deployment status agent-api",
    ]


def test_deploy_wait_confirms_then_watches(stack: Stack, tmp_path: Path) -> None:
    with stack.driving():
        lines = ok(deploy(stack, tmp_path, V1, "--wait", *FAST))

    assert lines[1] == "Deployment: dep_agent-api_1"
    assert lines[-1] == "Deployment dep_agent-api_1 successful: Deployment completed successfully"


def test_deploy_wait_json_prints_the_deploy_result_then_the_final_record(stack: Stack, tmp_path: Path) -> None:
    with stack.driving():
        lines = ok(deploy(stack, tmp_path, V1, "--wait", "--json", *FAST))

    started, final = (json.loads(line) for line in lines)
    assert started["deployment"]["deployment_id"] == final["deployment_id"] == "dep_agent-api_1"
    assert final["status"] == "successful"
    assert [v["stable"] for v in final["versions"]] == [True]


def test_events_follow_prints_each_event_once_until_the_end(stack: Stack, tmp_path: Path) -> None:
    ok(deploy(stack, tmp_path, V1))

    with stack.driving():
        lines = ok(stack.cli("events", "agent-api", "--follow", "--json", *FAST))

    assert [json.loads(line) for line in lines] == stack.record("agent-api")["events"]


def test_rich_watch_ends_with_the_outcome(stack: Stack, tmp_path: Path) -> None:
    ok(deploy(stack, tmp_path, V1))

    with stack.driving():
        lines = ok(stack.cli("watch", "agent-api", *FAST, env={"MN_CLI_OUTPUT": "rich"}))

    assert any("primary" in line and "3/3 healthy, 3 placed" in line for line in lines)
    assert lines[-1] == "Deployment dep_agent-api_1 successful: Deployment completed successfully"
