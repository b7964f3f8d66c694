"""The gRPC door end to end: a `dev up`-style stack requires its token; the official `mn` CLI and `mn-deploy
deployment` get in with MN_GRPC_AUTH_TOKEN_FILE set as `dev up` says, and are refused without it; the token file is
its owner's only and no process carries the token in its arguments; a controller serving TLS is reached with
`--tls-ca`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from backends.loopback import free_port
from backends.process import ProcessGroup
from backends.protocol.credentials import TOKEN_ENV, TOKEN_FILE_ENV
from backends.redis.server import LocalRedisServer
from mn_deploy.live_cli import mn_deploy_command
from tests.conftest import RedisServerFactory
from tests.e2e.conftest import BUNDLES, World, marked
from tests.live.conftest import order_key_file
from tests.polling import wait_for
from tests.tls import throwaway_ca

pytestmark = pytest.mark.e2e


def run(command: list[str], target: str, **env: str | None) -> subprocess.CompletedProcess[str]:
    """`command` with the environment of the test (MN_GRPC_AUTH_TOKEN_FILE set by the stack), changed by `env`."""
    settings = {**os.environ, "MN_GRPC_TARGET": target, "MN_CLI_OUTPUT": "plain", "NO_COLOR": "1", **env}
    environment = {name: value for name, value in settings.items() if value is not None}
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=60, check=False)


def mn(world: World, *args: str, **env: str | None) -> subprocess.CompletedProcess[str]:
    return run([str(Path(sys.executable).with_name("mn")), "deployment", *args], world.stack.grpc_address, **env)


def mn_deploy(target: str, *args: str, **env: str | None) -> subprocess.CompletedProcess[str]:
    return run([*mn_deploy_command(), "deployment", *args], target, **env)


def test_the_official_cli_gets_in_with_the_token_file_and_is_refused_without_it(world: World) -> None:
    world.deploy("hello/v1.json", min_healthy_ms=300)
    world.settled()

    listed, status = mn(world, "list"), mn(world, "status", "hello")
    refused = [mn(world, "list", **{TOKEN_FILE_ENV: None}), mn(world, "status", "hello", **{TOKEN_FILE_ENV: None})]
    wrong = mn(world, "deploy", str(BUNDLES / "hello" / "v2.json"), **{TOKEN_ENV: "a-guess-0123456789abcdef"})

    assert (listed.returncode, status.returncode) == (0, 0), listed.stderr + status.stderr
    assert [d["deployment_key"] for d in json.loads(listed.stdout)["data"]] == ["hello"]
    assert json.loads(status.stdout)["status"] == "successful"
    for done in [*refused, wrong]:  # the official CLI's answer to UNAUTHENTICATED and PERMISSION_DENIED alike
        assert (done.returncode, "MN_PERMISSION_DENIED" in done.stdout) == (13, True), done.stdout
    assert [v["version"] for v in world.get()["versions"]] == ["1"]  # the refused deploy made no version


def test_mn_deploy_gets_in_with_the_token_file_and_without_it_says_what_to_set(world: World) -> None:
    target = world.stack.grpc_address

    allowed = mn_deploy(target, "list", "--json")
    refused = mn_deploy(target, "list", **{TOKEN_FILE_ENV: None})

    assert allowed.returncode == 0, allowed.stderr
    assert json.loads(allowed.stdout)["data"] == []
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr == (
        f"error: the controller at {target} requires a token: set {TOKEN_FILE_ENV} to its token file "
        f"(or {TOKEN_ENV} to the token)\n"
    )


def test_the_token_file_is_its_owners_only_and_no_process_carries_the_token_in_its_arguments(world: World) -> None:
    token = world.stack.token
    pids = [pid for pid in marked(world.marker, world.root) if pid != os.getpid()]

    assert world.stack.token_file.stat().st_mode & 0o777 == 0o600
    assert len(token) >= 32
    assert pids, "the stack's processes"
    for pid in pids:
        assert token not in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")


def test_a_controller_serving_tls_is_reached_with_the_ca_and_not_without_it(
    redis_server_factory: RedisServerFactory, marker: str, tmp_path: Path
) -> None:
    certificates = throwaway_ca(tmp_path / "ca")
    redis: LocalRedisServer = redis_server_factory()
    target, log = f"127.0.0.1:{free_port()}", tmp_path / "controller.log"
    token_file = tmp_path / "token"
    token_file.write_text("a-token-for-the-tls-controller-0123\n")
    token_file.chmod(0o600)
    command = [*mn_deploy_command(), "controller", "run", "--grpc", target, "--auth-token-file", str(token_file)]
    command += ["--tls-cert", str(certificates.cert), "--tls-key", str(certificates.key)]
    env = {**os.environ, "MN_REDIS_URL": redis.url, "MN_ORDER_KEY_FILE": str(order_key_file(tmp_path))}
    with log.open("wb") as output:
        controller = ProcessGroup(command, cwd=tmp_path, env=env, output=output.fileno())
    try:
        wait_for(lambda: f"serving gRPC on {target}" in log.read_text(), what="the controller to serve")
        tokened = {TOKEN_FILE_ENV: str(token_file)}

        over_tls = mn_deploy(target, "list", "--json", "--tls-ca", str(certificates.ca), **tokened)
        plain = mn_deploy(target, "list", **tokened)

        assert over_tls.returncode == 0, over_tls.stderr + log.read_text()
        assert json.loads(over_tls.stdout)["data"] == []
        assert (plain.returncode, plain.stderr) == (
            3,
            f"error: cannot reach the controller at {target}: start one with `mn-deploy dev up`\n",
        )
    finally:
        controller.terminate(5.0)
        assert controller.wait() == 0, log.read_text()
