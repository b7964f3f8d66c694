"""The waiting commands (`watch`, `deploy --wait`, `events --follow`) ride out a controller that does not answer
for a while, as while a standby takes over, and say so once; past `--grace` they give up in one line. Every other
call fails fast, and a deploy is never sent twice.

The outage is scripted by call number, not by time: the controller's service goes unanswered for the
GetDeployment calls the test names, and the world moves on only once they have been made.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest

from backends.live.controller import JobService
from backends.protocol import job_pb2
from mn_deploy import deployment_cli
from tests.cli.conftest import Cli, Stack, serving
from tests.cli.test_deployment_cli import V1, deploy, ok, write_bundle
from tests.scripted import World

FAST = ("--interval", "0.01")
FOREVER = range(1, 10**9)


class Outage(JobService):
    """The stack's service, except that the GetDeployment calls numbered in `down` (from 1, ascending) go
    unanswered: aborted with `code`, or with no code left hanging as a paused leader leaves them (until the test
    ends). A deploy is aborted with `deploy_code` when one is given."""

    def __init__(
        self,
        stack: Stack,
        down: Sequence[int],
        code: grpc.StatusCode | None = grpc.StatusCode.UNAVAILABLE,
        deploy_code: grpc.StatusCode | None = None,
    ) -> None:
        super().__init__(stack.world.controller, stack.lock, stack.bundles, stack.world.clock)
        self.down, self.code, self.deploy_code = down, code, deploy_code
        self.gets = self.deploys = 0
        self.ended = threading.Event()

    def GetDeployment(
        self, request: job_pb2.GetDeploymentRequest, context: grpc.ServicerContext
    ) -> job_pb2.DeploymentResponse:
        self.gets += 1  # the CLI makes one call at a time
        if self.gets in self.down:
            if self.code is None:
                self.ended.wait()
            context.abort(self.code or grpc.StatusCode.UNAVAILABLE, "the controller is not leading")
        return super().GetDeployment(request, context)

    def DeployJob(self, request: job_pb2.DeployJobRequest, context: grpc.ServicerContext) -> job_pb2.DeploymentResponse:
        self.deploys += 1
        if self.deploy_code is not None:
            context.abort(self.deploy_code, "the controller is not leading")
        return super().DeployJob(request, context)

    def over(self) -> bool:
        """Whether every call of the outage has been made (so the world may move on)."""
        return self.gets > self.down[-1]


@contextmanager
def outage(stack: Stack, down: Sequence[int], **codes: grpc.StatusCode | None) -> Iterator[tuple[Cli, Outage]]:
    """The CLI pointed at the stack's world through an `Outage`, the world driven once the outage is over."""
    service = Outage(stack, down, **codes)

    def after_the_outage(world: World) -> None:
        if service.over():
            world.converge()

    try:
        with serving(service) as cli, stack.driving(after_the_outage):
            yield cli, service
    finally:
        service.ended.set()


def warned(cli: Cli, grace: str = "30") -> str:
    return f"warning: controller at {cli.target} unavailable, retrying for up to {grace} s\n"


@pytest.mark.parametrize(
    "code",
    [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, None],
    ids=["unavailable", "deadline-exceeded", "no-answer"],
)
def test_watch_rides_out_a_failover_and_says_so_once(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: grpc.StatusCode | None
) -> None:
    monkeypatch.setattr(deployment_cli, "LOOK_TIMEOUT_S", 0.2)  # how long an unanswered look waits
    ok(deploy(stack, tmp_path, V1))

    with outage(stack, range(2, 5), code=code) as (cli, service):
        result = cli.cli("watch", "agent-api", *FAST)

    assert result.exit_code == 0, result.output
    assert result.stderr == warned(cli)
    assert result.stdout.splitlines()[-1] == "Deployment dep_agent-api_1 successful: Deployment completed successfully"
    assert service.gets >= 5


def test_on_a_terminal_the_warning_is_printed_above_the_live_view(stack: Stack, tmp_path: Path) -> None:
    """A line written past the live view would be drawn over at its next refresh."""
    ok(deploy(stack, tmp_path, V1))

    with outage(stack, range(2, 5)) as (cli, _):
        result = cli.cli("watch", "agent-api", *FAST, env={"MN_CLI_OUTPUT": "rich", "FORCE_COLOR": "1"})

    assert (result.exit_code, result.stderr) == (0, "")
    assert warned(cli) in result.stdout
    assert "successful" in result.stdout.rsplit(warned(cli), 1)[1], "the view goes on below it"


def test_deploy_wait_rides_out_a_failover_right_after_the_deploy_and_sends_it_once(
    stack: Stack, tmp_path: Path
) -> None:
    bundle = write_bundle(tmp_path / "app", V1)

    with outage(stack, range(1, 4)) as (cli, service):
        result = cli.cli("deploy", str(bundle), "--wait", *FAST)

    assert result.exit_code == 0, result.output
    assert result.stderr == warned(cli)
    assert result.stdout.splitlines()[-1] == "Deployment dep_agent-api_1 successful: Deployment completed successfully"
    assert service.deploys == 1
    assert stack.deployment_ids() == ["dep_agent-api_1"]


def test_events_follow_rides_out_a_failover_and_prints_each_event_once(stack: Stack, tmp_path: Path) -> None:
    ok(deploy(stack, tmp_path, V1))

    with outage(stack, range(2, 6)) as (cli, _):
        result = cli.cli("events", "agent-api", "--follow", "--json", *FAST)

    assert result.exit_code == 0, result.output
    assert result.stderr == warned(cli)
    assert [json.loads(line) for line in result.stdout.splitlines()] == stack.record("agent-api")["events"]


def test_each_outage_is_said_once(stack: Stack, tmp_path: Path) -> None:
    ok(deploy(stack, tmp_path, V1))

    with outage(stack, (2, 3, 5, 6)) as (cli, _):  # the fourth look is answered
        result = cli.cli("watch", "agent-api", *FAST)

    assert result.exit_code == 0, result.output
    assert result.stderr == warned(cli) * 2


def test_past_the_grace_period_a_waiting_command_gives_up_in_one_line(stack: Stack, tmp_path: Path) -> None:
    ok(deploy(stack, tmp_path, V1))

    with outage(stack, FOREVER[1:]) as (cli, service):
        result = cli.cli("watch", "agent-api", *FAST, "--grace", "0.3")

    assert (result.exit_code, result.stderr.splitlines()) == (
        3,
        [
            warned(cli, "0.3").rstrip("\n"),
            f"error: controller at {cli.target} still unavailable after 0.3 s; stopped waiting "
            "(the deployment goes on: `mn-deploy deployment watch dep_agent-api_1` follows it again)",
        ],
    )
    assert service.gets > 3, "it kept looking"


def test_a_grace_of_0_gives_up_at_once(stack: Stack, tmp_path: Path) -> None:
    ok(deploy(stack, tmp_path, V1))

    with outage(stack, FOREVER[1:]) as (cli, service):
        result = cli.cli("watch", "agent-api", *FAST, "--grace", "0")

    assert (result.exit_code, result.stderr) == (
        3,
        f"error: cannot reach the controller at {cli.target}: start one with `mn-deploy dev up`\n",
    )
    assert result.stdout.startswith("Watch: running | primary 0/3 healthy")
    assert service.gets == 2


def test_an_unanswered_deploy_is_not_sent_again(stack: Stack, tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "app", V1)

    with outage(stack, FOREVER, deploy_code=grpc.StatusCode.UNAVAILABLE) as (cli, service):
        result = cli.cli("deploy", str(bundle), "--wait", *FAST)

    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr == f"error: cannot reach the controller at {cli.target}: start one with `mn-deploy dev up`\n"
    assert (service.deploys, service.gets) == (1, 0)


@pytest.mark.parametrize(
    "command",
    [["status", "agent-api"], ["history", "agent-api"], ["events", "agent-api"], ["watch", "agent-api"]],
    ids=["status", "history", "events", "watch-first-look"],
)
def test_what_does_not_wait_fails_fast(stack: Stack, tmp_path: Path, command: list[str]) -> None:
    """A command's first look is not ridden out either: a wrong --target is reported at once."""
    ok(deploy(stack, tmp_path, V1))

    with outage(stack, FOREVER) as (cli, service):
        result = cli.cli(*command)

    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr == f"error: cannot reach the controller at {cli.target}: start one with `mn-deploy dev up`\n"
    assert service.gets == 1


def test_a_refusal_while_waiting_is_not_ridden_out(stack: Stack, tmp_path: Path) -> None:
    ok(deploy(stack, tmp_path, V1))

    with outage(stack, (2,), code=grpc.StatusCode.NOT_FOUND) as (cli, service):
        result = cli.cli("watch", "agent-api", *FAST)

    assert (result.exit_code, result.stderr) == (2, "error: the controller is not leading\n")
    assert service.gets == 2
