"""Redis URLs at every door that takes one (`controller run`, `agent worker`, `service`, `deployment logs`): a bad
one is one line and exit code 2, a Redis that refuses or cannot answer one line too, and none of these lines, nor
the server's command line, shows a password. Real processes and a real redis-server."""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

import pytest
import redis

from backends.loopback import free_port
from backends.protocol import signing
from backends.redis.client import check_url, connect, masked_url
from backends.redis.server import LocalRedisServer
from mn_deploy.live_cli import mn_deploy_command

SECRET = "s3cret-Pa55"
COMMANDS = {
    "controller run": ["controller", "run", "--grpc", "127.0.0.1:1"],
    "agent worker": ["agent", "worker", "--node", "n1"],
    "service list": ["service", "list"],
    "deployment logs": ["deployment", "logs", "hello"],
}


def run(command: str, url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The command with `--redis URL`, as its own process, in a scratch directory; the daemons with an order key."""
    args = [*mn_deploy_command(), *COMMANDS[command], "--redis", url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MN_REDIS")} | {"TMPDIR": str(tmp_path)}
    key = tmp_path / "order-key"
    if not key.exists():
        with os.fdopen(os.open(key, os.O_WRONLY | os.O_CREAT, 0o600), "w") as file:
            file.write(secrets.token_hex(32) + "\n")
    env[signing.ENV] = str(key)
    return subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://user:pw@host:1/0", "redis://user:***@host:1/0"),
        ("redis://:pw@host/0", "redis://:***@host/0"),
        ("rediss://pw@host:1/0?ssl_ca_certs=/ca.pem", "rediss://***@host:1/0?ssl_ca_certs=/ca.pem"),
        ("redis://u:p%40ss@h@host:1/0", "redis://u:***@host:1/0"),
        ("redis://host:1/0", "redis://host:1/0"),
        ("redis://[::1:pw@x", "***"),
    ],
)
def test_a_url_is_shown_without_its_password(url: str, shown: str) -> None:
    assert masked_url(url) == shown


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (f"http://:{SECRET}@host:1/0", "not a Redis URL"),
        (f"unix://:{SECRET}@/tmp/redis.sock", "not a Redis URL"),
        (f"redis://:{SECRET}@host:99999/0", "Port out of range"),
        (f"redis://:{SECRET}@host:1/0?ssl_ca_certs=/ca.pem", "ssl_ca_certs needs TLS: use rediss://"),
        (f"rediss://:{SECRET}@host:1/0?password=x", "unknown option 'password'"),
        (f"redis://:{SECRET}@host:1/x", "the path must be /DB, a database number"),
    ],
)
def test_a_bad_url_is_refused_in_one_line_without_its_password(url: str, reason: str) -> None:
    with pytest.raises(ValueError) as refused:
        connect(url)

    (line,) = str(refused.value).splitlines()
    assert line.startswith(masked_url(url) + ": ") and reason in line
    assert SECRET not in line


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_door_refuses_a_bad_url_in_one_line_exit_2_without_its_password(command: str, tmp_path: Path) -> None:
    url = f"redis://admin:{SECRET}@127.0.0.1:1/0?bogus=1"

    done = run(command, url, tmp_path)

    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: Invalid value for '--redis': redis://admin:***@127.0.0.1:1/0?bogus=1: "), line
    assert SECRET not in done.stdout + done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize(("command", "code"), [("agent worker", 2), ("service list", 3), ("deployment logs", 3)])
def test_a_redis_that_cannot_answer_is_one_line_without_the_password(command: str, code: int, tmp_path: Path) -> None:
    url = f"redis://admin:{SECRET}@127.0.0.1:{free_port()}/0"

    done = run(command, url, tmp_path)

    assert done.returncode == code, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert f"Redis at redis://admin:***@127.0.0.1:{url.rsplit(':', 1)[1]}" in line, line
    assert SECRET not in done.stderr


def test_a_password_protected_server_keeps_its_password_off_its_command_line(tmp_path: Path) -> None:
    with LocalRedisServer(tmp_path / "redis", password=SECRET) as server:
        check_url(server.url)
        (pid,) = [
            int(p.name)
            for p in Path("/proc").iterdir()
            if p.name.isdigit() and _cwd(p) == (tmp_path / "redis").resolve() and _comm(p) == "redis-server"
        ]
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes()
        config = tmp_path / "redis" / "redis.conf"
        anonymous = connect(server.url.replace(f":{SECRET}@", ""))
        with pytest.raises(redis.AuthenticationError) as refused:
            anonymous.ping()
        anonymous.close()
        wrong = connect(server.url.replace(SECRET, "wrong"))
        with pytest.raises(redis.AuthenticationError):
            wrong.ping()
        wrong.close()
        assert connect(server.url).ping()

    assert SECRET.encode() not in command_line
    assert config.stat().st_mode & 0o777 == 0o600
    assert SECRET not in str(refused.value)


def _cwd(process: Path) -> Path | None:
    try:
        return (process / "cwd").resolve()
    except OSError:
        return None


def _comm(process: Path) -> str:
    try:
        return (process / "comm").read_text().strip()
    except OSError:
        return ""
