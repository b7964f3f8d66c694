"""Discovery that stays up in the live world (R14): workers renew the registry entries of the instances they run.

The registry's renewal and listing on fakeredis and a real redis-server; the worker's renewal decisions with
stand-in supervisors; then real workers running real agents with a short registry TTL. Proving that an entry
persists means watching it over several TTLs: those tests check its presence all along a window rather than
sleeping; everything else waits for a state with a deadline.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import fakeredis
import pytest
import redis

from backends.live.controller.runtime import RedisRuntime
from backends.live.worker.daemon import Worker
from backends.live.worker.supervisor import Serving
from backends.redis.bundles import RedisBundleStore
from backends.redis.client import connect
from backends.redis.keys import Keys
from backends.redis.registry import RedisRegistry
from backends.redis.server import LocalRedisServer
from mn_deploy_core.ports import Fact, FactKind, Placement, Role, ServiceInstance
from tests.live.conftest import DEADLINE_S, Facts
from tests.live.test_worker import (
    GRACE_MS,
    agent_node,
    agent_pids,
    example,
    payloads,
    placement,
    process_env,
    run_token,  # noqa: F401 - the autouse fixture that marks this test's agents
)
from tests.polling import wait_for

NAMESPACE = "mn_test"
KEYS = Keys(NAMESPACE)
TTL_MS = 600
HOST = "node-host.test"


def a_service(instance_id: str, *, name: str = "api", key: str = "hello", role: str = "primary") -> ServiceInstance:
    return ServiceInstance(name, instance_id, "web", "job_1", "dep_1", key, "1", role)


def held_for(condition: Callable[[], object], seconds: float) -> None:
    """`condition` holds at every look over the whole window (looks every 20 ms)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert condition(), "the condition stopped holding"
        time.sleep(0.02)


@pytest.fixture(params=["fakeredis", "redis"])
def client(request: pytest.FixtureRequest) -> redis.Redis:
    if request.param == "fakeredis":
        return fakeredis.FakeRedis(decode_responses=True, protocol=2)
    real: redis.Redis = request.getfixturevalue("real_redis")
    return real


# ---- the registry ------------------------------------------------------------------------------


def test_a_renewal_sets_the_workers_fields_and_a_fresh_ttl(client: redis.Redis) -> None:
    registry = RedisRegistry(client, namespace=NAMESPACE, ttl_ms=60_000)
    registry.register(a_service("i1"))
    client.pexpire(KEYS.instance("i1"), 1_000)

    assert registry.heartbeat("i1", {"node": "n1", "host": HOST, "port": "8080"})

    assert client.pttl(KEYS.instance("i1")) > 1_000
    [entry] = registry.entries("api")
    assert entry == {
        "name": "api",
        "instance_id": "i1",
        "agent_id": "web",
        "job_id": "job_1",
        "deployment_id": "dep_1",
        "deployment_key": "hello",
        "deployment_version": "1",
        "deployment_role": "primary",
        "passing": "0",
        "node": "n1",
        "host": HOST,
        "port": "8080",
    }
    assert registry.heartbeat("i1", {"port": ""})  # an empty value removes the field
    assert "port" not in registry.entries("api")[0]


def test_a_renewal_never_brings_back_an_entry_that_is_gone(client: redis.Redis) -> None:
    registry = RedisRegistry(client, namespace=NAMESPACE)
    registry.register(a_service("i1"))
    registry.deregister("i1")

    assert not registry.heartbeat("i1", {"node": "n1", "host": HOST})
    assert not registry.heartbeat("i1")
    assert not client.exists(KEYS.instance("i1"))


def test_the_controllers_writes_keep_the_workers_fields(client: redis.Redis) -> None:
    registry = RedisRegistry(client, namespace=NAMESPACE)
    registry.register(a_service("i1", role="canary"))
    registry.heartbeat("i1", {"node": "n1", "host": HOST, "port": "8080"})

    registry.register(a_service("i1", name="admin"))
    registry.set_passing("i1", True)
    registry.promote("hello", "1")

    assert [(e["name"], e["node"], e["port"], e["deployment_role"]) for e in registry.all_entries()] == [
        ("admin", "n1", "8080", "primary"),
        ("api", "n1", "8080", "primary"),
    ]
    assert [s.instance_id for s in registry.lookup("api")] == ["i1"]


def test_entries_of_a_key_or_of_every_key(client: redis.Redis) -> None:
    registry = RedisRegistry(client, namespace=NAMESPACE)
    registry.register(a_service("a1", key="a"))
    registry.register(a_service("a2", key="a", role="canary"))
    registry.register(a_service("b1", name="db", key="b"))
    registry.register(a_service("moved", key="a"))
    registry.register(a_service("moved", key="b"))
    other = RedisRegistry(client, namespace="other")  # another namespace is not listed
    other.register(a_service("x1", key="a"))

    assert [(e["name"], e["instance_id"]) for e in registry.all_entries("a")] == [("api", "a1"), ("api", "a2")]
    assert [(e["name"], e["instance_id"]) for e in registry.all_entries()] == [
        ("api", "a1"),
        ("api", "a2"),
        ("api", "moved"),
        ("db", "b1"),
    ]
    assert registry.all_entries("nothing") == []


def test_a_namespace_with_glob_characters_lists_only_its_own(client: redis.Redis) -> None:
    RedisRegistry(client, namespace="n?").register(a_service("i1"))
    RedisRegistry(client, namespace="nx").register(a_service("i2"))

    assert [e["instance_id"] for e in RedisRegistry(client, namespace="n?").all_entries()] == ["i1"]


# ---- the worker's renewals, with stand-in supervisors ------------------------------------------


class StandIn:
    def __init__(self, serving: Serving | None) -> None:
        self.now = serving

    def serving(self) -> Serving | None:
        return self.now


def test_the_worker_renews_running_instances_only(client: redis.Redis, tmp_path: Path) -> None:
    registry = RedisRegistry(client, namespace=NAMESPACE, ttl_ms=60_000)
    for instance_id in ("running", "exited", "unregistered-yet"):
        registry.register(a_service(instance_id))
    client.delete(KEYS.instance("unregistered-yet"))
    worker = Worker(client, "n1", namespace=NAMESPACE, workdir=tmp_path, registry_ttl_ms=60_000, host=HOST)
    running, exited, later = StandIn(Serving(1, 8080)), StandIn(None), StandIn(Serving(1, None))
    worker._instances = {"running": running, "exited": exited, "unregistered-yet": later}  # type: ignore[dict-item]
    client.pexpire(KEYS.instance("running"), 1_000)
    client.pexpire(KEYS.instance("exited"), 1_000)

    worker._renew(every=False)  # new runs are renewed at once

    assert client.hmget(KEYS.instance("running"), "node", "host", "port") == ["n1", HOST, "8080"]
    assert client.pttl(KEYS.instance("running")) > 1_000
    assert client.pttl(KEYS.instance("exited")) <= 1_000
    assert client.hget(KEYS.instance("exited"), "node") is None
    assert not client.exists(KEYS.instance("unregistered-yet"))

    client.pexpire(KEYS.instance("running"), 1_000)
    worker._renew(every=False)  # a run already renewed waits for the next period
    assert client.pttl(KEYS.instance("running")) <= 1_000
    worker._renew(every=True)
    assert client.pttl(KEYS.instance("running")) > 1_000

    registry.register(a_service("unregistered-yet"))  # the controller's registration comes after all
    running.now = Serving(2, 9090)  # a restart: a new port, renewed at once
    worker._renew(every=False)
    assert client.hget(KEYS.instance("unregistered-yet"), "node") == "n1"
    assert client.hget(KEYS.instance("unregistered-yet"), "port") is None
    assert client.hget(KEYS.instance("running"), "port") == "9090"

    del worker._instances["running"]  # stopped
    client.pexpire(KEYS.instance("running"), 1_000)
    worker._renew(every=True)
    assert client.pttl(KEYS.instance("running")) <= 1_000


def test_renewals_come_every_third_of_the_ttl() -> None:
    with pytest.raises(ValueError):
        Worker(fakeredis.FakeRedis(decode_responses=True), "n1", workdir=Path("/nonexistent"), registry_ttl_ms=2)


# ---- real workers, real agents -----------------------------------------------------------------


@pytest.fixture
def registry(real_redis: redis.Redis) -> RedisRegistry:
    """The controller's registry, with a short TTL."""
    return RedisRegistry(real_redis, namespace=NAMESPACE, ttl_ms=TTL_MS)


@pytest.fixture
def worker(redis_server: LocalRedisServer, real_redis: redis.Redis, tmp_path: Path) -> Iterator[Worker]:
    """Worker n1 in a thread, renewing entries with the registry's TTL; stopped with its agents at the end."""
    client = connect(redis_server.url)
    worker = Worker(
        client,
        "n1",
        namespace=NAMESPACE,
        workdir=tmp_path / "n1",
        heartbeat_ms=50,
        grace_ms=GRACE_MS,
        registry_ttl_ms=TTL_MS,
        host=HOST,
    )
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), name="worker n1", daemon=True)
    thread.start()
    wait_for(lambda: real_redis.exists(KEYS.node_heartbeat("n1")), what="node n1 to register")
    yield worker
    stop.set()
    thread.join(DEADLINE_S)
    assert not thread.is_alive()
    client.close()


def launch(registry: RedisRegistry, runtime: RedisRuntime, p: Placement) -> None:
    """As the controller launches an instance: its entry (not passing yet), then the placement."""
    registry.register(
        ServiceInstance(
            "hello", p.instance_id, p.agent_id, p.job_id, p.deployment_id, p.deployment_key,
            p.deployment_version, str(p.role),
        )
    )  # fmt: skip
    runtime.place(p)


def renewed(registry: RedisRegistry, instance_id: str) -> dict[str, str] | None:
    return next((e for e in registry.entries("hello") if e["instance_id"] == instance_id and "node" in e), None)


def test_a_passing_primary_stays_discoverable_and_a_stopped_one_goes(
    worker: Worker,
    registry: RedisRegistry,
    runtime: RedisRuntime,
    facts: Facts,
    real_redis: redis.Redis,
    tmp_path: Path,
) -> None:
    bundles = RedisBundleStore(real_redis, namespace=NAMESPACE)
    node = example("hello/v1.json")["nodes"][0]
    p = replace(placement(node, bundle=bundles.put(payloads("hello/v1.json"))), role=Role.PRIMARY)

    launch(registry, runtime, p)
    facts.until(Fact(p.instance_id, FactKind.CHECK_PASSING, "health"))
    registry.set_passing(p.instance_id, True)  # the controller's part

    entry = wait_for(lambda: renewed(registry, p.instance_id), what="the worker to renew the entry")
    [pid] = agent_pids(p.instance_id)
    assert (entry["node"], entry["host"], entry["port"]) == ("n1", HOST, process_env(pid)["PORT"])
    held_for(lambda: [s.instance_id for s in registry.lookup("hello")] == [p.instance_id], 6 * TTL_MS / 1000)
    assert 0 < real_redis.pttl(KEYS.instance(p.instance_id)) <= TTL_MS

    runtime.stop(p.instance_id)  # the controller would also deregister it: the entry goes even without that

    wait_for(lambda: not real_redis.exists(KEYS.instance(p.instance_id)), 3 * TTL_MS / 1000, "the entry to expire")
    assert registry.lookup("hello") == []


def test_an_instance_that_exits_is_no_longer_renewed(
    worker: Worker, registry: RedisRegistry, runtime: RedisRuntime, facts: Facts, tmp_path: Path
) -> None:
    go = tmp_path / f"exit-{uuid.uuid4().hex}"
    waits = "import os, sys, time\nwhile not os.path.exists(sys.argv[1]): time.sleep(0.02)"
    command = ["python3", "-c", waits, str(go)]
    p = placement(agent_node(command))  # no restarts: an exit fails it

    launch(registry, runtime, p)
    wait_for(lambda: renewed(registry, p.instance_id), what="the worker to renew the entry")
    assert "port" not in registry.entries("hello")[0]  # no http or tcp check: no port it is known to serve on
    held_for(lambda: registry.entries("hello"), 3 * TTL_MS / 1000)

    go.touch()
    facts.until(Fact(p.instance_id, FactKind.FAILED))

    wait_for(lambda: not registry.entries("hello"), 3 * TTL_MS / 1000, "the entry to expire")
