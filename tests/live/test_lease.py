"""The controller lease and the fence every store write checks, on a real redis-server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import grpc
import pytest
import redis

from backends.live.controller import serve
from backends.live.controller.lease import Lease
from backends.live.controller.runtime import RedisRuntime
from backends.loopback import free_port
from backends.memory import MemoryRegistry
from backends.protocol import job_pb2, job_pb2_grpc
from backends.redis import FencedError, Keys, RedisStore
from mn_deploy_core.controller import Controller
from mn_deploy_core.records import InstanceRecord
from tests.backends import samples
from tests.live.test_runtime import placement
from tests.scripted import ScriptedRuntime, service_manifest

NAMESPACE = "mn_lease"
K = Keys(NAMESPACE)


def lease(client: redis.Redis, owner: str, ttl_ms: int = 3000, **kwargs: object) -> Lease:
    return Lease(client, owner=owner, namespace=NAMESPACE, ttl_ms=ttl_ms, **kwargs)  # type: ignore[arg-type]


def taken(candidate: Lease) -> str:
    """Acquire a lease nobody holds, without waiting."""
    value = candidate.acquire(threading.Event())
    assert value is not None
    return value


class CountingStop(threading.Event):
    """A stop event that counts how often a standby waited on it."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        return super().wait(timeout)


def test_each_term_gets_the_next_fencing_token(real_redis: redis.Redis) -> None:
    first, second = lease(real_redis, "a"), lease(real_redis, "b")

    assert taken(first) == "a:1"
    assert 0 < real_redis.pttl(K.controller_lease) <= 3000
    first.release()
    assert taken(second) == "b:2"
    assert real_redis.get(K.controller_lease) == "b:2"


def test_renew_extends_only_the_term_that_holds_the_lease(real_redis: redis.Redis) -> None:
    holder = lease(real_redis, "a", ttl_ms=1000)
    taken(holder)
    real_redis.pexpire(K.controller_lease, 100)

    assert holder.renew()
    assert real_redis.pttl(K.controller_lease) > 500
    real_redis.set(K.controller_lease, "b:9")
    assert not holder.renew()
    assert not holder.held()


def test_release_never_deletes_another_terms_lease(real_redis: redis.Redis) -> None:
    holder = lease(real_redis, "a")
    taken(holder)
    real_redis.set(K.controller_lease, "b:9")

    holder.release()

    assert real_redis.get(K.controller_lease) == "b:9"


def test_a_term_trusts_its_lease_for_two_thirds_of_the_ttl_after_the_last_renewal(real_redis: redis.Redis) -> None:
    now = [100.0]
    holder = lease(real_redis, "a", ttl_ms=3000, clock=lambda: now[0])
    taken(holder)

    now[0] = 101.99
    assert holder.held()
    now[0] = 102.0
    assert not holder.held()
    assert holder.renew()
    assert holder.held()


def test_a_standby_takes_over_within_the_ttl_of_a_dead_leader(real_redis: redis.Redis) -> None:
    """The dead leader's last renewal is its acquisition; the standby waits on PTTL, not in a hot loop."""
    taken(lease(real_redis, "dead", ttl_ms=900))
    acquired_at = time.monotonic()
    standby, stop = lease(real_redis, "standby", ttl_ms=900), CountingStop()

    assert standby.acquire(stop) == "standby:2"
    assert time.monotonic() - acquired_at < 0.9 + 0.5  # scheduling slack on a busy machine
    assert len(stop.waits) <= 4
    assert all(timeout is not None and timeout > 0 for timeout in stop.waits)


def test_a_standby_notices_a_released_lease_within_a_renewal_interval(real_redis: redis.Redis) -> None:
    leader = lease(real_redis, "a", ttl_ms=3000)
    taken(leader)
    standby, stop = lease(real_redis, "b", ttl_ms=3000), threading.Event()
    found: list[str | None] = []
    waiting = threading.Thread(target=lambda: found.append(standby.acquire(stop)))
    waiting.start()
    time.sleep(0.1)  # the standby is now waiting (not a synchronisation: any order gives the same result)

    released_at = time.monotonic()
    leader.release()
    waiting.join(5)

    assert found == ["b:2"]
    assert time.monotonic() - released_at < 1.0 + 0.5  # scheduling slack on a busy machine


def test_a_standby_stops_waiting_when_told_to(real_redis: redis.Redis) -> None:
    taken(lease(real_redis, "a"))
    stop = threading.Event()
    stop.set()

    assert lease(real_redis, "b").acquire(stop) is None


# ---- fencing -----------------------------------------------------------------------------------


def _writes(store: RedisStore) -> list[Callable[[], object]]:
    instance = InstanceRecord("i", "worker-0", "job_a_1", "a", "dep_a_1", "1", "primary", 0.0)
    return [
        lambda: store.allocate_deployment_number("a"),
        lambda: store.allocate_version("a"),
        lambda: store.save_deployment(samples.deployment("a", 1), [samples.event("deployment_started")]),
        lambda: store.save_version(samples.version("a", "1")),
        lambda: store.save_instances([instance], []),
        lambda: store.save_instances([], ["i"]),
    ]


def test_a_store_fenced_with_the_current_term_writes(real_redis: redis.Redis) -> None:
    store = RedisStore(real_redis, namespace=NAMESPACE, fence=taken(lease(real_redis, "a")))

    for write in _writes(store):
        write()

    assert store.load_deployment("dep_a_1") is not None
    assert store.list_instances() == []


def test_a_store_fenced_with_a_lost_term_writes_nothing(real_redis: redis.Redis) -> None:
    old = lease(real_redis, "a", ttl_ms=1000)
    store = RedisStore(real_redis, namespace=NAMESPACE, fence=taken(old))
    real_redis.delete(K.controller_lease)
    taken(lease(real_redis, "b"))
    before = {key: real_redis.type(key) for key in real_redis.scan_iter()}

    for write in _writes(store):
        with pytest.raises(FencedError, match="no longer held by a:1"):
            write()

    assert {key: real_redis.type(key) for key in real_redis.scan_iter()} == before
    assert real_redis.get(K.last_number) is None


def test_an_unfenced_store_ignores_the_lease(real_redis: redis.Redis) -> None:
    taken(lease(real_redis, "a"))
    store = RedisStore(real_redis, namespace=NAMESPACE)

    for write in _writes(store):
        write()

    assert store.load_deployment("dep_a_1") is not None


def test_a_deposed_leader_answers_unavailable_so_clients_retry_elsewhere(real_redis: redis.Redis) -> None:
    old = lease(real_redis, "a", ttl_ms=1000)
    store = RedisStore(real_redis, namespace=NAMESPACE, fence=taken(old))
    real_redis.delete(K.controller_lease)
    taken(lease(real_redis, "b"))
    runtime = ScriptedRuntime()
    controller = Controller(store, runtime, MemoryRegistry())
    address = f"127.0.0.1:{free_port()}"
    server = serve(controller, address)
    try:
        with grpc.insecure_channel(address) as channel:
            stub = job_pb2_grpc.JobServiceStub(channel)
            request = job_pb2.DeployJobRequest(manifest_json=json.dumps(service_manifest()))
            with pytest.raises(grpc.RpcError) as raised:
                stub.DeployJob(request, timeout=10)
        assert raised.value.code() is grpc.StatusCode.UNAVAILABLE
        assert "no longer held by a:1" in str(raised.value.details())
    finally:
        server.stop(None)


def test_a_deposed_leader_orders_no_worker_about(real_redis: redis.Redis) -> None:
    old = lease(real_redis, "a", ttl_ms=1000)
    runtime = RedisRuntime(real_redis, namespace=NAMESPACE, fence=taken(old))
    real_redis.set(K.node_heartbeat("n1"), "1")
    real_redis.sadd(K.nodes, "n1")
    runtime.place(placement("before"))
    real_redis.delete(K.controller_lease)
    taken(lease(real_redis, "b"))
    before = {key: real_redis.type(key) for key in real_redis.scan_iter()}
    orders = real_redis.xlen(K.node_assignments("n1"))

    with pytest.raises(FencedError, match="no longer held by a:1"):
        runtime.place(placement("after"))
    with pytest.raises(FencedError):
        runtime.stop("before")

    assert {key: real_redis.type(key) for key in real_redis.scan_iter()} == before
    assert real_redis.xlen(K.node_assignments("n1")) == orders
    assert real_redis.hkeys(K.assigned) == ["before"]
