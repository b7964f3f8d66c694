"""`mn-deploy dev up` as a user runs it: two lines once everything is ready; a redis-server that dies is restarted
with every record; a clean stop on Ctrl-C, SIGTERM or SIGHUP (a closed terminal); nothing left behind, not even
after a SIGKILL; a bad option is one line and exit code 2."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import grpc
import pytest

from backends.loopback import free_port
from backends.redis.server import executable
from mn_deploy.live_cli import mn_deploy_command
from tests.e2e.conftest import Live, descendants, running
from tests.polling import wait_for

pytestmark = pytest.mark.e2e

T = TypeVar("T")


@dataclass
class Up:
    """A running `dev up`: its process, what it printed, the file its stderr goes to, and its $TMPDIR."""

    process: subprocess.Popen[str]
    redis_url: str
    address: str
    stderr: Path
    tmp: Path
    token_file: Path

    def live(self, marker: str) -> Live:
        from mn_sdk import Client  # after MN_HOME is set: the SDK opens its log file at import

        client = Client(target=self.address, timeout=10, auth_token=self.token_file.read_text().strip())
        return Live(client, marker, self.tmp.parent)

    def redis_server(self) -> int:
        (pid,) = [p for p in descendants(self.process.pid) if _role(p) == "redis-server"]
        return pid

    def scratch(self) -> Path:
        """The working directory `dev up` made for itself."""
        (directory,) = self.tmp.glob("mn-dev-*")
        return directory

    def line(self, prefix: str) -> str | None:
        """The first line `dev up` wrote to stderr starting with `prefix` (its children log there too)."""
        return next((line for line in self.stderr.read_text().splitlines() if line.startswith(prefix)), None)


@contextmanager
def dev_up(tmp_path: Path) -> Iterator[Up]:
    """`mn-deploy dev up --workers 1` as a user starts it, with $TMPDIR under `tmp_path`; stopped at the end."""
    if executable() is None:
        pytest.skip("redis-server is not installed")
    address, tmp, stderr = f"127.0.0.1:{free_port()}", tmp_path / "tmp", tmp_path / "dev-up.err"
    tmp.mkdir()
    with stderr.open("w") as err:
        process = subprocess.Popen(
            [*mn_deploy_command(), "dev", "up", "--workers", "1", "--grpc", address],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env={**os.environ, "TMPDIR": str(tmp)},
        )
    try:
        assert process.stdout is not None
        redis_line, file_line = process.stdout.readline().strip(), process.stdout.readline().strip()
        grpc_line = process.stdout.readline().strip()
        assert re.fullmatch(r"redis: redis://:\*\*\*@127\.0\.0\.1:\d+/0", redis_line), stderr.read_text()
        assert file_line.startswith("redis-url-file: "), stderr.read_text()
        assert grpc_line == f"grpc: {address}", stderr.read_text()
        token_line = process.stdout.readline().strip()
        assert token_line.startswith("token-file: "), stderr.read_text()
        redis_url = Path(file_line.removeprefix("redis-url-file: ")).read_text().strip()
        yield Up(process, redis_url, address, stderr, tmp, Path(token_line.removeprefix("token-file: ")))
    finally:
        if process.poll() is None:  # the test failed half-way: still stop the stack the way a user would
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        print(f"---- dev up's stderr\n{stderr.read_text()[-5000:]}")  # shown by pytest only when the test failed


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_dev_up_prints_where_to_connect_and_a_signal_stops_everything_and_removes_its_directory(
    signum: int, marker: str, mn_home: Path, tmp_path: Path
) -> None:
    with dev_up(tmp_path) as up:
        client = up.live(marker).client
        assert json.loads(client.list_deployments())["data"] == []
        client.channel.close()
        scratch = up.scratch()
        assert (scratch / "redis" / "appendonlydir").is_dir(), "Redis keeps an append-only file"

        up.process.send_signal(signum)

        assert up.process.wait(30) == 0
        assert not scratch.exists()
        assert "Traceback" not in up.stderr.read_text()


def test_a_killed_redis_server_is_restarted_with_every_record_and_the_stack_goes_on(
    marker: str, mn_home: Path, tmp_path: Path
) -> None:
    with dev_up(tmp_path) as up:
        live = up.live(marker)
        live.deploy("hello/v1.json", min_healthy_ms=300)
        before = live.settled()
        assert before["status"] == "successful"
        agents = live.serving("1", "1")
        killed = up.redis_server()

        os.kill(killed, signal.SIGKILL)

        notice = wait_for(lambda: up.line("redis-server "), what="dev up's notice")
        port = up.redis_url.rsplit(":", 1)[1].removesuffix("/0")
        assert notice == (
            f"redis-server was killed by SIGKILL; restarted on port {port} with the records of its append-only file"
        )
        assert up.redis_server() != killed
        after = wait_for(lambda: _served(live.get), what="the controller to serve again")
        assert after == before, "every record came back"
        assert live.agents() == agents, "the agents ran on"
        live.deploy("hello/v2.json", min_healthy_ms=300)
        assert live.settled()["status"] == "successful"
        live.serving("2", "2")
        assert up.process.poll() is None
        live.client.channel.close()


def test_dev_up_stops_with_one_line_when_redis_server_cannot_be_restarted(
    marker: str, mn_home: Path, tmp_path: Path
) -> None:
    with dev_up(tmp_path) as up:
        scratch = up.scratch()
        (scratch / "redis" / "appendonlydir" / "appendonly.aof.manifest").write_text("not a manifest\n")

        os.kill(up.redis_server(), signal.SIGKILL)

        assert up.process.wait(30) == 1
        assert up.stderr.read_text().strip().splitlines()[-1] == (
            "Error: redis-server was killed by SIGKILL; could not restart it: "
            "redis-server exited: Invalid AOF manifest file format"
        )
        assert not scratch.exists()


def test_dev_up_killed_with_sigkill_leaves_no_process_and_no_directory_behind(
    marker: str, mn_home: Path, tmp_path: Path
) -> None:
    with dev_up(tmp_path) as up:
        live = up.live(marker)
        live.deploy("hello/v1.json", min_healthy_ms=300)
        agents = live.serving("1", "1")
        live.client.channel.close()
        scratch = up.scratch()
        started = descendants(up.process.pid)
        assert {"redis-server", "controller", "worker"} <= {_role(pid) for pid in started}
        assert {a.pid for a in agents} <= set(started)

        up.process.kill()
        up.process.wait()

        wait_for(lambda: not [pid for pid in started if running(pid)], what="every process dev up started to end")
        wait_for(lambda: not scratch.exists(), what="its temporary directory to be removed")


@pytest.mark.parametrize(
    "options",
    [
        ["--grpc", "0.0.0.0:notaport"],
        ["--grpc", ":99999"],
        ["--grpc", "nohost"],
        ["--grpc", "127.0.0.1:0"],
        ["--workers", "0"],
        ["--workdir", __file__],
    ],
    ids=lambda options: " ".join(options).replace(__file__, "FILE"),
)
def test_a_bad_option_is_one_line_and_exit_code_2_before_anything_starts(options: list[str], tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        [*mn_deploy_command(), "dev", "up", *options], env=env, capture_output=True, text=True, timeout=60
    )

    assert (done.returncode, done.stdout) == (2, "")
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: Invalid value for '{options[0]}': "), line
    assert not list(tmp_path.iterdir()), "nothing was started"


def test_a_malformed_grpc_address_says_what_is_expected() -> None:
    done = subprocess.run(
        [*mn_deploy_command(), "dev", "up", "--grpc", "0.0.0.0:notaport"], capture_output=True, text=True, timeout=60
    )

    assert done.stderr.strip() == (
        "error: Invalid value for '--grpc': '0.0.0.0:notaport' is not HOST:PORT with a port from 1 to 65535"
    )


def test_dev_up_without_redis_server_says_how_to_install_it(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}
    done = subprocess.run([*mn_deploy_command(), "dev", "up"], env=env, capture_output=True, text=True, timeout=60)

    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "Error: redis-server is not installed: apt-get install -y redis-server (or brew install redis)"
    ]


def _served(call: Callable[[], T]) -> T | None:
    """The call's result, or None while no controller serves (it stands by until Redis answers again)."""
    try:
        return call()
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.UNAVAILABLE:
            raise
        return None


def _role(pid: int) -> str:
    """What a process of the stack is: redis-server, a controller, a worker; else its command name."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        name = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "(gone)"
    if b"controller" in args:
        return "controller"
    return "worker" if b"worker" in args else name
