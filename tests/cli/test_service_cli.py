"""`mn-deploy service list` and `resolve` on a real redis-server holding registry entries as the controller and
a worker write them."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest
import redis
from click.testing import CliRunner, Result

from backends.loopback import free_port
from backends.redis.registry import RedisRegistry
from backends.redis.server import LocalRedisServer
from mn_deploy.cli import main
from mn_deploy_core.ports import ServiceInstance

NAMESPACE = "mn_cli_test"


def a_service(instance_id: str, *, name: str = "api", key: str = "hello", role: str = "primary") -> ServiceInstance:
    return ServiceInstance(name, instance_id, "web", "job_1", "dep_1", key, "3", role)


@pytest.fixture
def url(redis_server: LocalRedisServer, real_redis: redis.Redis) -> str:
    """Entries: api (a passing primary with the worker's fields, a canary, a primary not passing) of key hello,
    and db (a passing primary not renewed yet) of key store."""
    registry = RedisRegistry(real_redis, namespace=NAMESPACE)
    registry.register(a_service("api.1"))
    registry.register(a_service("api.2", role="canary"))
    registry.register(a_service("api.3"))
    registry.register(a_service("db.1", name="db", key="store"))
    for instance_id in ("api.1", "api.2", "db.1"):
        registry.set_passing(instance_id, True)
    registry.heartbeat("api.1", {"node": "n1", "host": "box1", "port": "8080"})
    registry.heartbeat("api.2", {"node": "n2", "host": "box2"})
    return redis_server.url


def cli(*args: str, url: str | None = None, env: Mapping[str, str | None] | None = None) -> Result:
    environment = {"MN_REDIS_NAMESPACE": NAMESPACE, "MN_CLI_OUTPUT": None, "MN_REDIS_URL": url, **(env or {})}
    return CliRunner().invoke(main, ["service", *args], env=environment)


def test_list_shows_what_a_lookup_sees_of_every_key(url: str) -> None:
    result = cli("list", url=url)

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "# Service: name | instance | key | version | role | passing | node | address",
        "Service: api | api.1 | hello | 3 | primary | yes | n1 | box1:8080",
        "Service: db | db.1 | store | 3 | primary | yes | - | -",
    ]


def test_list_all_of_one_key_shows_canaries_and_non_passing_ones(url: str) -> None:
    result = cli("list", "hello", "--all", "--redis", url)

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "# Service: name | instance | key | version | role | passing | node | address",
        "Service: api | api.1 | hello | 3 | primary | yes | n1 | box1:8080",
        "Service: api | api.2 | hello | 3 | canary | yes | n2 | box2",
        "Service: api | api.3 | hello | 3 | primary | no | - | -",
    ]


def test_list_json(url: str) -> None:
    result = cli("list", "store", "--json", url=url)

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [
        {
            "name": "db",
            "instance_id": "db.1",
            "agent_id": "web",
            "job_id": "job_1",
            "deployment_id": "dep_1",
            "deployment_key": "store",
            "deployment_version": "3",
            "deployment_role": "primary",
            "passing": True,
            "node": None,
            "host": None,
            "port": None,
        }
    ]


def test_an_empty_list_says_so_on_stderr(url: str) -> None:
    result = cli("list", "nothing", url=url)

    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "no services\n")
    assert json.loads(cli("list", "nothing", "--json", url=url).stdout) == []


def test_resolve_returns_the_primary_passing_instances(url: str) -> None:
    result = cli("resolve", "api", "--json", url=url)

    assert result.exit_code == 0, result.output
    [entry] = json.loads(result.stdout)
    assert (entry["instance_id"], entry["node"], entry["host"], entry["port"]) == ("api.1", "n1", "box1", 8080)
    plain = cli("resolve", "api", url=url).stdout
    assert plain.splitlines() == [
        "# Service: name | instance | key | version | role | passing | node | address",
        "Service: api | api.1 | hello | 3 | primary | yes | n1 | box1:8080",
    ]


def test_resolve_exits_1_when_nothing_is_visible(url: str) -> None:
    result = cli("resolve", "nobody", url=url)

    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == "error: no primary, passing instance of service 'nobody'\n"
    as_json = cli("resolve", "nobody", "--json", url=url)
    assert (as_json.exit_code, as_json.stdout, as_json.stderr) == (1, "[]\n", "")


def test_an_unreachable_redis_is_one_line_and_exit_3() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"

    result = cli("list", url=url)

    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: Redis at {url} could not answer: ")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "args",
    [("resolve",), ("list", "a", "b"), ("list", "--bogus"), ("resolve", "api", "--redis", "http://nowhere")],
)
def test_usage_errors_are_one_line_and_exit_2(args: tuple[str, ...]) -> None:
    result = cli(*args)

    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1


def test_help_explains_the_commands() -> None:
    result = cli("--help")

    assert result.exit_code == 0
    for word in ("list", "resolve", "MN_REDIS_URL", "Exit codes"):
        assert word in result.stdout
    assert "primary" in cli("resolve", "--help").stdout
