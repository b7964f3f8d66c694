"""The Redis door, end to end: `dev up` puts its Redis behind a generated password that no command line, log line
or printed line shows, and a whole stack runs over `rediss://` against a throwaway CA made here."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from backends.redis.client import connect
from backends.redis.server import TlsFiles
from mn_deploy.live_cli import mn_deploy_command
from tests.e2e.conftest import Live, descendants, stack_world
from tests.e2e.test_dev_up import dev_up
from tests.tls import throwaway_ca

pytestmark = pytest.mark.e2e


def service_list(redis_url: str) -> subprocess.CompletedProcess[str]:
    """`mn-deploy service list hello --json` with the URL in MN_REDIS_URL, as the docs tell users to give it."""
    env = {**os.environ, "MN_REDIS_URL": redis_url}
    command = [*mn_deploy_command(), "service", "list", "hello", "--json"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def test_dev_up_guards_redis_with_a_password_that_no_command_line_log_or_output_shows(
    marker: str, mn_home: Path, tmp_path: Path
) -> None:
    with dev_up(tmp_path) as up:
        live = up.live(marker)
        live.deploy("hello/v1.json", min_healthy_ms=300)
        assert live.settled()["status"] == "successful"
        agents = live.serving("1", "1")
        password = redis.connection.parse_url(up.redis_url)["password"]
        started = descendants(up.process.pid)

        command_lines = {pid: Path(f"/proc/{pid}/cmdline").read_bytes() for pid in [up.process.pid, *started]}
        agent_environments = [Path(f"/proc/{a.pid}/environ").read_bytes() for a in agents]
        listed = service_list(up.redis_url)
        live.client.channel.close()
        anonymous = connect(up.redis_url.replace(f":{password}@", ""))
        with pytest.raises(redis.AuthenticationError):
            anonymous.ping()
        anonymous.close()

    assert len(password) >= 32
    assert {a.pid for a in agents} <= set(command_lines), "the agents' command lines were checked too"
    assert [pid for pid, line in command_lines.items() if password.encode() in line] == []
    assert listed.returncode == 0, listed.stderr
    assert [entry["instance_id"] for entry in json.loads(listed.stdout)] == [a.instance_id for a in agents]
    assert password not in up.stderr.read_text(), "no log line shows it"
    assert not [env for env in agent_environments if password.encode() in env], "agents do not inherit it"


@pytest.fixture
def tls_world(tmp_path: Path, mn_home: Path, marker: str) -> Iterator[Live]:
    """A stack whose Redis speaks only TLS, with a certificate of a CA made for the test."""
    certificates = throwaway_ca(tmp_path / "ca")
    tls = TlsFiles(cert=certificates.cert, key=certificates.key, ca=certificates.ca)
    with stack_world(tmp_path, marker, workers=1, redis_tls=tls) as world:
        yield world


def test_a_controller_and_a_worker_over_rediss_roll_out_a_deployment(tls_world: Live, tmp_path: Path) -> None:
    url = (tmp_path / "stack" / "redis-url").read_text().strip()
    assert url.startswith("rediss://")

    tls_world.deploy("hello/v1.json", min_healthy_ms=300)

    assert tls_world.settled()["status"] == "successful"
    agents = tls_world.serving("1", "1")
    listed = service_list(url)
    assert listed.returncode == 0, listed.stderr
    assert [entry["instance_id"] for entry in json.loads(listed.stdout)] == [a.instance_id for a in agents]
    plain = connect(url.replace("rediss://", "redis://").split("?")[0], retries=0)
    with pytest.raises(redis.ConnectionError):
        plain.ping()  # the server speaks only TLS
    plain.close()
    untrusted = connect(url.split("?")[0], retries=0)
    with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
        untrusted.ping()  # a server whose CA the client was not given is not trusted
    untrusted.close()
