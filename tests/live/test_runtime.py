"""RedisRuntime on a real redis-server: placement on live nodes, the fact stream's consumer group, node expiry.

Nodes here are registered the way a worker's heartbeat does it (a key with a TTL plus the nodes set), so these
tests need no worker; tests/live/test_worker.py runs real ones.
"""

from __future__ import annotations

import time

import pytest
import redis

from backends.live.controller.runtime import RedisRuntime
from backends.protocol import signing, wire
from backends.redis.client import connect
from backends.redis.keys import Keys
from backends.redis.server import LocalRedisServer
from mn_deploy_core.ports import Fact, FactKind, Placement
from tests.live.conftest import ORDER_KEY
from tests.placements import a_placement

NAMESPACE = "mn_test"
KEYS = Keys(NAMESPACE)


def placement(instance_id: str) -> Placement:
    node = {"node_id": "web", "agent_type": "executor", "config": {"command": ["python3", "agent.py"]}}
    return a_placement(instance_id=instance_id, node=node)


def register(client: redis.Redis, node: str) -> None:
    client.set(KEYS.node_heartbeat(node), "test", px=60_000)
    client.sadd(KEYS.nodes, node)


def desired(client: redis.Redis, node: str) -> list[str]:
    return sorted(client.hkeys(KEYS.node_desired(node)))


def orders(client: redis.Redis, node: str) -> list[dict[str, str]]:
    return [fields for _, fields in client.xrange(KEYS.node_assignments(node))]


def report(client: redis.Redis, fact: Fact) -> str:
    return str(client.xadd(KEYS.facts, wire.fact_fields(fact, "n1")))


@pytest.fixture
def runtime(real_redis: redis.Redis) -> RedisRuntime:
    return RedisRuntime(real_redis, namespace=NAMESPACE, node_ttl_ms=1234)


def test_the_node_ttl_is_published_for_the_workers(real_redis: redis.Redis, runtime: RedisRuntime) -> None:
    assert real_redis.get(KEYS.node_ttl) == "1234"


def test_placements_go_to_the_least_loaded_live_node(real_redis: redis.Redis, runtime: RedisRuntime) -> None:
    register(real_redis, "a")
    register(real_redis, "b")
    runtime.place(placement("i1"))  # a tie: the first name wins
    runtime.place(placement("i2"))
    runtime.place(placement("i3"))
    real_redis.delete(KEYS.node_heartbeat("a"))  # no longer live: never chosen, however light
    runtime.place(placement("i4"))

    assert desired(real_redis, "a") == ["i1", "i3"]
    assert desired(real_redis, "b") == ["i2", "i4"]
    assert real_redis.hget(KEYS.assigned, "i4") == "b"
    assert [o["op"] for o in orders(real_redis, "b")] == ["place", "place"]
    assert wire.decode_placement(orders(real_redis, "b")[0]["placement"]) == placement("i2")


def test_without_a_live_node_a_placement_waits_for_one(real_redis: redis.Redis, runtime: RedisRuntime) -> None:
    runtime.place(placement("i1"))
    runtime.place(placement("i2"))
    assert runtime.expire_nodes() == []
    assert sorted(real_redis.hkeys(KEYS.unassigned)) == ["i1", "i2"]

    register(real_redis, "a")
    register(real_redis, "b")
    runtime.expire_nodes()

    assert (desired(real_redis, "a"), desired(real_redis, "b")) == (["i1"], ["i2"])
    assert real_redis.hlen(KEYS.unassigned) == 0


def test_stop_orders_the_node_to_stop_and_forgets_unassigned_ones(
    real_redis: redis.Redis, runtime: RedisRuntime
) -> None:
    register(real_redis, "a")
    runtime.place(placement("i1"))
    runtime.stop("i1")
    real_redis.delete(KEYS.node_heartbeat("a"))
    runtime.place(placement("i2"))
    runtime.stop("i2")

    assert desired(real_redis, "a") == []
    assert orders(real_redis, "a")[-1] == {"op": "stop", "instance_id": "i1"}
    assert not real_redis.exists(KEYS.assigned, KEYS.unassigned)


def test_facts_come_through_the_consumer_group(real_redis: redis.Redis, runtime: RedisRuntime) -> None:
    facts = [Fact("i1", FactKind.RUNNING), Fact("i1", FactKind.CHECK_PASSING, "c")]
    ids = [report(real_redis, fact) for fact in facts]

    read = runtime.read_facts(100)

    assert read == list(zip(ids, facts, strict=True))
    assert runtime.read_facts(10) == []
    runtime.ack(ids)
    assert real_redis.xlen(KEYS.facts) == 0  # acknowledged facts are deleted


def test_a_restarted_controller_gets_unacknowledged_facts_first(real_redis: redis.Redis, runtime: RedisRuntime) -> None:
    first = report(real_redis, Fact("i1", FactKind.RUNNING))
    second = report(real_redis, Fact("i1", FactKind.READY))
    runtime.read_facts(100)
    runtime.ack([first])
    later = report(real_redis, Fact("i1", FactKind.EXITED))

    successor = RedisRuntime(real_redis, namespace=NAMESPACE)

    assert successor.read_facts(100) == [(second, Fact("i1", FactKind.READY))]
    assert successor.read_facts(100) == [(later, Fact("i1", FactKind.EXITED))]
    assert successor.read_facts(10) == []


def test_entries_that_are_not_facts_are_dropped(real_redis: redis.Redis, runtime: RedisRuntime) -> None:
    real_redis.xadd(KEYS.facts, {"kind": "exploded", "instance_id": "i1"})
    fact = report(real_redis, Fact("i1", FactKind.READY))

    assert runtime.read_facts(100) == [(fact, Fact("i1", FactKind.READY))]
    assert RedisRuntime(real_redis, namespace=NAMESPACE).read_facts(10) == [(fact, Fact("i1", FactKind.READY))]


def test_a_long_wait_returns_before_the_socket_times_out(redis_server: LocalRedisServer, runtime: RedisRuntime) -> None:
    client = connect(redis_server.url, socket_timeout=0.2)
    impatient = RedisRuntime(client, namespace=NAMESPACE)
    started = time.monotonic()

    assert impatient.read_facts(60_000) == []
    assert time.monotonic() - started < 1.0
    client.close()


def test_facts_survive_a_server_that_lost_the_group(real_redis: redis.Redis, runtime: RedisRuntime) -> None:
    real_redis.delete(KEYS.facts)  # as after a restart without persistence
    fact = report(real_redis, Fact("i1", FactKind.READY))

    assert runtime.read_facts(100) == [(fact, Fact("i1", FactKind.READY))]


def test_an_expired_node_is_dropped_and_its_instances_failed(real_redis: redis.Redis, runtime: RedisRuntime) -> None:
    register(real_redis, "a")
    register(real_redis, "b")
    for instance_id in ("i1", "i2", "i3"):
        runtime.place(placement(instance_id))
    real_redis.delete(KEYS.node_heartbeat("a"))  # what its TTL does when the worker stops beating

    lost = runtime.expire_nodes()

    assert sorted(lost, key=lambda f: f.instance_id) == [Fact("i1", FactKind.FAILED), Fact("i3", FactKind.FAILED)]
    assert real_redis.smembers(KEYS.nodes) == {"b"}
    assert not real_redis.exists(KEYS.node_desired("a"))
    assert real_redis.hgetall(KEYS.assigned) == {"i2": "b"}
    assert runtime.expire_nodes() == []
    runtime.stop("i1")  # the core stops what it replaces: nothing left to order
    assert [o["op"] for o in orders(real_redis, "a")] == ["place", "place"]


def test_resync_asks_every_node(real_redis: redis.Redis, runtime: RedisRuntime) -> None:
    register(real_redis, "a")
    register(real_redis, "b")

    runtime.request_resync()

    assert orders(real_redis, "a") == orders(real_redis, "b") == [{"op": "resync"}]


def test_keep_only_stops_what_no_record_names_wherever_it_waits(real_redis: redis.Redis, runtime: RedisRuntime) -> None:
    """After a takeover: instances a node is told to run (even without an index entry) or that wait for a node,
    that no controller record names, are stopped; the named ones stay."""
    register(real_redis, "a")
    runtime.place(placement("kept"))
    runtime.place(placement("stray"))
    real_redis.hset(KEYS.node_desired("a"), "unindexed", wire.encode_placement(placement("unindexed")))
    real_redis.hset(KEYS.unassigned, "waiting", wire.encode_placement(placement("waiting")))

    assert runtime.keep_only(["kept"]) == ["stray", "unindexed", "waiting"]
    assert desired(real_redis, "a") == ["kept"]
    assert real_redis.hkeys(KEYS.unassigned) == []
    assert sorted(real_redis.hkeys(KEYS.assigned)) == ["kept"]
    assert [o.get("instance_id") for o in orders(real_redis, "a") if o["op"] == wire.STOP] == ["stray", "unindexed"]


# ---- signed orders ---------------------------------------------------------------------------------------------


@pytest.fixture
def signing_runtime(real_redis: redis.Redis) -> RedisRuntime:
    return RedisRuntime(real_redis, namespace=NAMESPACE, order_key=ORDER_KEY)


def test_each_order_is_signed_for_the_node_it_is_written_for(
    real_redis: redis.Redis, signing_runtime: RedisRuntime
) -> None:
    """Waiting for a node, a placement is signed for none; assigned, for its node, in the stream and the hash."""
    signing_runtime.place(placement("i1"))
    waiting = real_redis.hget(KEYS.unassigned, "i1")
    assert wire.decode_placement(ORDER_KEY.verify(NAMESPACE, signing.UNASSIGNED, waiting)) == placement("i1")

    register(real_redis, "a")
    signing_runtime.expire_nodes()
    signing_runtime.place(placement("i2"))

    for order, instance_id in zip(orders(real_redis, "a"), ["i1", "i2"], strict=True):
        assert order["placement"] == real_redis.hget(KEYS.node_desired("a"), instance_id)
        assert wire.decode_placement(ORDER_KEY.verify(NAMESPACE, "a", order["placement"])) == placement(instance_id)
        with pytest.raises(signing.BadOrder):
            ORDER_KEY.verify(NAMESPACE, "b", order["placement"])


def test_a_waiting_placement_the_controller_did_not_sign_is_forgotten_and_reported_failed(
    real_redis: redis.Redis, signing_runtime: RedisRuntime
) -> None:
    """Written into `unassigned` by someone else, it would otherwise be signed for the first node that comes."""
    signing_runtime.place(placement("mine"))
    real_redis.hset(KEYS.unassigned, "forged", wire.encode_placement(placement("forged")))
    register(real_redis, "a")

    assert signing_runtime.expire_nodes() == [Fact("forged", FactKind.FAILED)]
    assert desired(real_redis, "a") == ["mine"]
    assert real_redis.hkeys(KEYS.unassigned) == []
