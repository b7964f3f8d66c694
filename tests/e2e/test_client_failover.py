"""Clients ride out a failover: `mn-deploy deployment deploy --wait` and `watch`, run as processes, go on through
a leader killed (SIGKILL) or paused (SIGSTOP) while its standby takes over, and exit 0 when the rollout succeeds.
A paused leader still holds the gRPC port and answers nothing: the watch's look goes unanswered and its standby
leads without serving, until the old leader, resumed, finds its lease gone and lets the port go."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from backends.live.controller.lease import default_owner
from backends.process import ProcessGroup
from backends.redis import Keys, connect
from backends.redis.keys import namespace_from_env
from mn_deploy.live_cli import mn_deploy_command
from tests.e2e.conftest import BUNDLES, World, wait_for

pytestmark = pytest.mark.e2e

SUCCESS = "Deployment dep_hello_2 successful: Deployment completed successfully"
WAIT = ("--interval", "0.1")


@dataclass(frozen=True)
class Command:
    """A `mn-deploy deployment` command run as its own process; its output goes to files the test polls."""

    process: subprocess.Popen[bytes]
    out: Path
    err: Path

    def stdout(self) -> str:
        return self.out.read_text()

    def stderr(self) -> str:
        return self.err.read_text()


@contextmanager
def deployment_command(world: World, root: Path, *args: str) -> Iterator[Command]:
    env = {**os.environ, "MN_GRPC_TARGET": world.stack.grpc_address, "MN_CLI_OUTPUT": "plain"}
    out, err = root / "command.out", root / "command.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen([*mn_deploy_command(), "deployment", *args], stdout=stdout, stderr=stderr, env=env)
    try:
        yield Command(process, out, err)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def log_of(world: World, controller: ProcessGroup) -> str:
    number = world.stack.controllers.index(controller) + 1
    return (world.stack.workdir / f"controller-{number}.log").read_text(errors="replace")


def a_standby(world: World) -> ProcessGroup:
    """A second controller, once it stands by."""
    standby = world.stack.start_controller()
    wait_for(lambda: "standby: waiting for the controller lease" in log_of(world, standby), what="the standby")
    return standby


def leads(world: World, controller: ProcessGroup) -> bool:
    """Whether `controller` holds the lease (its value is `<host>/<pid>:<token>`)."""
    client = connect(world.stack.redis_url)
    try:
        holder = client.get(Keys(namespace_from_env()).controller_lease) or ""
    finally:
        client.close()
    host = default_owner().rpartition("/")[0]
    return holder.startswith(f"{host}/{controller.pid}:")


def warned(world: World) -> str:
    return f"warning: controller at {world.stack.grpc_address} unavailable, retrying for up to 30 s"


def test_deploy_wait_rides_out_a_killed_leader_and_succeeds_once_the_standby_leads(
    world: World, tmp_path: Path
) -> None:
    world.deploy("hello/v1.json", min_healthy_ms=300)
    world.settled()
    (leader,) = world.stack.controllers
    standby = a_standby(world)
    v2 = str(BUNDLES / "hello" / "v2.json")

    with deployment_command(world, tmp_path, "deploy", v2, "--min-healthy-ms", "1500", "--wait", *WAIT) as command:
        wait_for(lambda: "Watch: running" in command.stdout(), what="the deploy to be watched")
        leader.kill()
        leader.wait()
        code = command.process.wait(60)

    assert code == 0, command.stderr()
    assert command.stderr().splitlines() == [warned(world)]
    assert command.stdout().splitlines()[-1] == SUCCESS
    assert leads(world, standby)
    done = world.get()
    assert [v["version"] for v in done["versions"]] == ["1", "2"], "the deploy was sent once"
    assert done["counters"]["placed"] == 2, "no agent was placed twice"


def test_watch_rides_out_a_paused_leader_whose_standby_waits_for_the_address(world: World, tmp_path: Path) -> None:
    world.deploy("hello/v1.json", min_healthy_ms=300)
    world.settled()
    (leader,) = world.stack.controllers
    standby = a_standby(world)
    world.deploy("hello/v2.json", min_healthy_ms=1500)

    with deployment_command(world, tmp_path, "watch", "hello", *WAIT) as command:
        wait_for(lambda: "Watch: running" in command.stdout(), what="the rollout to be watched")
        os.kill(leader.pid, signal.SIGSTOP)
        try:
            wait_for(lambda: leads(world, standby), what="the standby to take the lease")
            wait_for(lambda: "leading without serving" in log_of(world, standby), what="the standby to wait")
            wait_for(lambda: warned(world) in command.stderr(), what="a look to go unanswered")  # after 5 s
        finally:
            os.kill(leader.pid, signal.SIGCONT)
        code = command.process.wait(60)

    assert code == 0, command.stderr()
    assert set(command.stderr().splitlines()) == {warned(world)}  # once more if the resumed leader answered once
    assert command.stdout().splitlines()[-1] == SUCCESS
    assert f"serving gRPC on {world.stack.grpc_address}" in log_of(world, standby)
    assert "standby again" in log_of(world, leader), "the old leader stepped down and lives on"
    assert leader.wait(0) is None
