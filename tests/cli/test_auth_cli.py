"""`mn-deploy deployment` at a controller that lets no one in: it sends MN_GRPC_AUTH_TOKEN, else the token of
MN_GRPC_AUTH_TOKEN_FILE, as the official CLI does; a refused call is one line, exit 2, naming what to set; TLS with
--tls-ca (or MN_GRPC_TLS_CA). And `controller run`, which will not open an unguarded door to other hosts."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from backends.live.controller import serve
from backends.live.controller.auth import Tokens
from backends.live.controller.server import Door, ServerTls
from backends.loopback import free_port
from backends.protocol.credentials import TLS_CA_ENV, TOKEN_ENV, TOKEN_FILE_ENV
from backends.redis.server import LocalRedisServer
from mn_deploy.cli import main
from mn_deploy.live_cli import mn_deploy_command
from tests.cli.conftest import Cli, write_bundle
from tests.cli.test_deployment_cli import V1, ok, one_line_error
from tests.live.conftest import order_key_file
from tests.polling import wait_for
from tests.scripted import World
from tests.tls import Certificates, throwaway_ca

TOKEN = "the-controllers-token-0123456789"
READER = "a-read-only-token-0123456789"


def private(path: Path, text: str) -> Path:
    path.write_text(text + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[Cli]:
    """A controller that takes TOKEN (and READER, to read), and the CLI given TOKEN's file."""
    world, target = World(), f"127.0.0.1:{free_port()}"
    door = Door(Tokens((TOKEN.encode(),), (READER.encode(),)))
    server = serve(world.controller, target, lock=threading.Lock(), clock=world.clock, door=door)
    yield Cli(target, token_file=private(tmp_path / "token", TOKEN))
    server.stop(None).wait()


def test_the_token_of_the_file_is_sent(guarded: Cli) -> None:
    assert json.loads(ok(guarded.cli("list", "--json"))[0])["data"] == []


def test_the_variable_wins_over_the_file_as_in_the_official_cli(guarded: Cli, tmp_path: Path) -> None:
    wrong = private(tmp_path / "wrong", "a-token-nobody-accepts-01234")

    ok(guarded.cli("list", env={TOKEN_ENV: TOKEN, TOKEN_FILE_ENV: str(wrong)}))


def test_no_token_is_one_line_and_exit_2_naming_the_variable(guarded: Cli) -> None:
    result = guarded.cli("list", env={TOKEN_FILE_ENV: None})

    one_line_error(
        result,
        f"the controller at {guarded.target} requires a token: set {TOKEN_FILE_ENV} to its token file "
        f"(or {TOKEN_ENV} to the token)",
    )


@pytest.mark.parametrize("variable", [TOKEN_ENV, TOKEN_FILE_ENV])
def test_a_wrong_token_names_where_it_came_from(guarded: Cli, tmp_path: Path, variable: str) -> None:
    wrong = "a-token-nobody-accepts-01234"
    value = wrong if variable == TOKEN_ENV else str(private(tmp_path / "wrong", wrong))

    result = guarded.cli("list", env={TOKEN_FILE_ENV: None, variable: value})

    one_line_error(
        result, f"the controller at {guarded.target} refused the token of {variable}: set {variable} to one it accepts"
    )
    assert wrong not in result.output


def test_a_read_only_token_reads_and_a_deploy_with_it_is_refused(guarded: Cli, tmp_path: Path) -> None:
    reader = {TOKEN_FILE_ENV: None, TOKEN_ENV: READER}
    bundle = write_bundle(tmp_path / "v1", V1, {"input.json": b"{}"})

    ok(guarded.cli("list", env=reader))
    one_line_error(
        guarded.cli("deploy", str(bundle), env=reader),
        f"the token of {TOKEN_ENV} may only read on the controller at {guarded.target}: set one that may write",
    )
    assert json.loads(ok(guarded.cli("list", "--json"))[0])["data"] == []


def test_a_token_file_that_cannot_be_read_is_one_line_before_any_call(guarded: Cli, tmp_path: Path) -> None:
    missing = tmp_path / "missing"

    one_line_error(
        guarded.cli("list", env={TOKEN_FILE_ENV: str(missing)}),
        f"cannot read {TOKEN_FILE_ENV} {missing}: No such file or directory",
    )


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    return throwaway_ca(tmp_path / "ca")


@pytest.fixture
def tls(certificates: Certificates, tmp_path: Path) -> Iterator[Cli]:
    world, target = World(), f"127.0.0.1:{free_port()}"
    door = Door(Tokens((TOKEN.encode(),)), ServerTls.load(certificates.cert, certificates.key))
    server = serve(world.controller, target, lock=threading.Lock(), clock=world.clock, door=door)
    yield Cli(target, token_file=private(tmp_path / "token", TOKEN))
    server.stop(None).wait()


def test_tls_with_the_ca_of_the_option_or_the_variable(tls: Cli, certificates: Certificates) -> None:
    ok(tls.cli("list", "--tls-ca", str(certificates.ca)))
    ok(tls.cli("list", env={TLS_CA_ENV: str(certificates.ca)}))


def test_tls_refuses_a_controller_whose_certificate_another_ca_signed(tls: Cli, tmp_path: Path) -> None:
    stranger = throwaway_ca(tmp_path / "stranger", "stranger")

    result = tls.cli("list", "--tls-ca", str(stranger.ca), "--target", tls.target)

    one_line_error(result, f"cannot reach the controller at {tls.target}: start one with `mn-deploy dev up`", 3)


# ---- controller run: what it refuses before it starts ------------------------------------------------------------


def controller_run(*args: str, env: dict[str, str | None] | None = None) -> tuple[int, str]:
    clean = {TOKEN_ENV: None, TOKEN_FILE_ENV: None, "MN_GRPC_READ_TOKEN_FILE": None, **(env or {})}
    result = CliRunner().invoke(main, ["controller", "run", *args], env=clean)
    return result.exit_code, result.stderr


def test_controller_run_will_not_serve_other_hosts_without_a_token() -> None:
    address = f"0.0.0.0:{free_port()}"

    code, stderr = controller_run("--grpc", address)

    assert (code, stderr) == (
        2,
        f"error: refusing to serve gRPC on {address}, which other hosts may reach, without a token: give "
        f"--auth-token-file (or {TOKEN_FILE_ENV}), or --insecure to accept the risk\n",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tls-cert", "cert.pem"], "--tls-cert and --tls-key go together"),
        (
            ["--tls-cert", "nope.pem", "--tls-key", "nope.key"],
            "cannot read --tls-cert nope.pem: No such file or directory",
        ),
        (["--auth-token-file", "nope"], "cannot read --auth-token-file nope: No such file or directory"),
    ],
)
def test_controller_run_refuses_credentials_it_cannot_use_in_one_line(args: list[str], message: str) -> None:
    assert controller_run(*args) == (2, f"error: {message}\n")


def test_controller_run_refuses_a_token_file_others_may_read(tmp_path: Path) -> None:
    shared = tmp_path / "token"
    shared.write_text(TOKEN)
    shared.chmod(0o644)

    assert controller_run("--auth-token-file", str(shared)) == (
        2,
        f"error: --auth-token-file {shared} may be read by others (mode 644): chmod 600 it\n",
    )


def test_insecure_serves_other_hosts_without_a_token_and_says_so_at_start(
    redis_server: LocalRedisServer, tmp_path: Path
) -> None:
    address, log = f"0.0.0.0:{free_port()}", tmp_path / "controller.log"
    command = [*mn_deploy_command(), "controller", "run", "--grpc", address, "--insecure"]
    env = {
        "PATH": "/usr/bin:/bin",
        "MN_REDIS_URL": redis_server.url,
        "MN_ORDER_KEY_FILE": str(order_key_file(tmp_path)),
    }
    with log.open("w") as stderr:
        process = subprocess.Popen(command, stderr=stderr, env=env)
    try:
        warning = f"--insecure: serving gRPC on {address} without a token"
        wait_for(lambda: warning in log.read_text(), what="the --insecure warning")
    finally:
        process.terminate()
        process.wait(30)
    assert process.returncode == 0, log.read_text()
