"""The documented least-privilege ACL users (backends/redis/acl.py) on a real redis-server: a controller and a
worker that connect as them do their whole job, and the worker's credentials cannot write what decides what runs.

Redis's ACL log proves the first half: nothing either daemon sent was refused.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.exceptions import NoPermissionError

from backends.live.controller.runtime import RedisRuntime
from backends.live.worker.daemon import Worker
from backends.loopback import free_port
from backends.redis.acl import controller_rules, worker_rules
from backends.redis.bundles import RedisBundleStore
from backends.redis.client import connect
from backends.redis.instance_runtime import RUNNING, InstanceRuntime
from backends.redis.keys import DEFAULT_NAMESPACE, Keys
from backends.redis.server import LocalRedisServer
from mn_deploy_core.ports import Fact, FactKind
from tests.live import test_daemon, test_worker
from tests.live.conftest import DEADLINE_S, Facts
from tests.live.test_worker import KEYS, NAMESPACE, example, payloads, placement
from tests.polling import wait_for

run_token = test_worker.run_token  # the test's agents are told apart by their directory under tmp_path
sdk = test_daemon.sdk

UserFactory = Callable[[str, list[str]], str]


@pytest.fixture
def acl_user(redis_server: LocalRedisServer, real_redis: redis.Redis) -> Iterator[UserFactory]:
    """Makes ACL users on the session's server with a fresh password each and gives their URL; deleted after.
    The ACL log starts empty."""
    made: list[str] = []

    def make(name: str, rules: list[str]) -> str:
        password = secrets.token_urlsafe(16)
        real_redis.execute_command("ACL", "SETUSER", name, *rules, f">{password}")
        made.append(name)
        return f"redis://{name}:{password}@127.0.0.1:{redis_server.port}/0"

    real_redis.execute_command("ACL", "LOG", "RESET")
    yield make
    if made:
        real_redis.execute_command("ACL", "DELUSER", *made)


def refused(real_redis: redis.Redis) -> list[str]:
    """`user object` of each entry of Redis's ACL log: what it refused, and to whom."""
    return [f"{e['username']} {e['object']}" for e in real_redis.acl_log()]


def test_a_worker_under_its_acl_user_runs_an_instance_and_reports_it(
    acl_user: UserFactory, runtime: RedisRuntime, facts: Facts, real_redis: redis.Redis, tmp_path: Path
) -> None:
    client = connect(acl_user("worker-n1", worker_rules(KEYS, "n1")))
    worker = Worker(client, "n1", namespace=NAMESPACE, workdir=tmp_path / "n1", heartbeat_ms=50, grace_ms=300)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: real_redis.exists(KEYS.node_heartbeat("n1")), what="node n1 to register")
        bundle = RedisBundleStore(real_redis, namespace=NAMESPACE).put(payloads("hello/v1.json"))
        p = placement(example("hello/v1.json")["nodes"][0], bundle=bundle)
        runtime.place(p)

        facts.until(Fact(p.instance_id, FactKind.CHECK_PASSING, "health"))
        where = InstanceRuntime(real_redis, namespace=NAMESPACE).read([p.instance_id])[p.instance_id]
        assert where[0] == "n1" and where[1] is not None and where[1].state == RUNNING
        assert real_redis.xlen(KEYS.instance_log(p.instance_id)) > 0, "its log lines were shipped"
    finally:
        stop.set()
        thread.join(DEADLINE_S)
    assert not thread.is_alive()
    assert not real_redis.exists(KEYS.node_heartbeat("n1")), "it cleaned up after itself"
    assert refused(real_redis) == [], "nothing the worker did was refused"
    client.close()


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(lambda c: c.set(KEYS.deployment("dep_hello_9"), "{}"), id="a deployment record"),
        pytest.param(lambda c: c.sadd(KEYS.deployments, "dep_hello_9"), id="the deployment list"),
        pytest.param(lambda c: c.set(KEYS.version("hello", "9"), "{}"), id="a version"),
        pytest.param(lambda c: c.set(KEYS.current("hello"), "dep_hello_9"), id="the current deployment"),
        pytest.param(lambda c: c.incr(KEYS.last_number), id="a counter"),
        pytest.param(lambda c: c.set(KEYS.controller_lease, "me:1"), id="the lease"),
        pytest.param(lambda c: c.hset(KEYS.node_desired("n2"), "x", "{}"), id="another node's orders"),
        pytest.param(lambda c: c.xadd(KEYS.node_assignments("n1"), {"op": "place"}), id="its own order stream"),
        pytest.param(lambda c: c.set(f"{KEYS.prefix}bundle:f", "{}"), id="a bundle"),
        pytest.param(lambda c: c.xadd(KEYS.inputs("dep_hello_9"), {"t_ms": "0"}), id="a deployment's inputs"),
        pytest.param(lambda c: c.hset(KEYS.lives("dep_hello_9"), "i", "{}"), id="a deployment's lives"),
        pytest.param(lambda c: c.set("elsewhere", "1"), id="a key outside the namespace"),
        pytest.param(lambda c: c.flushdb(), id="FLUSHDB"),
        pytest.param(lambda c: c.config_set("requirepass", ""), id="CONFIG SET"),
    ],
)
def test_the_workers_credentials_cannot_write_what_decides_what_runs(
    write: Callable[[redis.Redis], Any], acl_user: UserFactory, real_redis: redis.Redis
) -> None:
    real_redis.set(KEYS.controller_lease, "controller:1")
    client = connect(acl_user("worker-n1", worker_rules(KEYS, "n1")))

    with pytest.raises(NoPermissionError):
        write(client)

    assert real_redis.dbsize() == 1, "nothing was written"
    assert real_redis.get(KEYS.controller_lease) == "controller:1"
    client.close()


def test_a_controller_and_a_worker_under_their_acl_users_roll_out_a_deployment(
    acl_user: UserFactory, real_redis: redis.Redis, sdk: Callable[[str], Any], tmp_path: Path
) -> None:
    keys = test_daemon.K
    controller_url = acl_user("controller", controller_rules(keys))
    worker_url = acl_user("worker-node-1", worker_rules(keys, "node-1"))
    address = f"127.0.0.1:{free_port()}"
    api = sdk(address)

    with test_daemon.workers(worker_url, tmp_path, "node-1"), test_daemon.daemon(controller_url, address, "a"):
        wait_for(lambda: test_daemon._serving(api), what="the controller to serve")
        api.deploy_job(json.dumps(test_daemon.agent_manifest("v1")), {})
        done = wait_for(lambda: (d := test_daemon.deployment(api))["status"] in ("successful", "failed") and d)

    assert done["status"] == "successful", done
    assert refused(real_redis) == [], "nothing either daemon did was refused"


def test_the_documented_acl_users_are_the_ones_tested() -> None:
    """docs/redis-layout.md shows the rules of acl.py for the default namespace, as they are."""
    keys = Keys(DEFAULT_NAMESPACE)
    text = (Path(__file__).parents[2] / "docs" / "redis-layout.md").read_text()

    assert f"ACL SETUSER mn-controller {' '.join(controller_rules(keys))} >CONTROLLER_PASSWORD\n" in text
    assert f"ACL SETUSER mn-worker-node-1 {' '.join(worker_rules(keys, 'node-1'))} >WORKER_PASSWORD\n" in text
