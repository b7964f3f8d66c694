"""What only the Redis registry does: heartbeat TTLs and indexes that clean themselves."""

from __future__ import annotations

import time

import redis

from backends.redis import Keys, RedisRegistry
from tests.backends.conftest import NAMESPACE
from tests.backends.samples import service

K = Keys(NAMESPACE)


def test_registering_and_heartbeats_set_the_ttl(redis_client: redis.Redis) -> None:
    registry = RedisRegistry(redis_client, namespace=NAMESPACE, ttl_ms=60_000)
    registry.register(service("w#1"))
    assert 0 < redis_client.pttl(K.instance("w#1")) <= 60_000
    redis_client.pexpire(K.instance("w#1"), 1_000)
    assert registry.heartbeat("w#1")
    assert redis_client.pttl(K.instance("w#1")) > 1_000


def test_an_instance_without_heartbeats_disappears(redis_client: redis.Redis) -> None:
    registry = RedisRegistry(redis_client, namespace=NAMESPACE, ttl_ms=20)
    registry.register(service("w#1"))
    deadline = time.monotonic() + 5
    while registry.lookup("api") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert registry.lookup("api") == []
    assert not registry.heartbeat("w#1")
    registry.set_passing("w#1", True)
    assert not redis_client.exists(K.instance("w#1"))
    assert not redis_client.exists(K.service("api"))


def test_an_instance_that_moved_key_is_not_promoted_by_the_old_key(redis_client: redis.Redis) -> None:
    registry = RedisRegistry(redis_client, namespace=NAMESPACE)
    registry.register(service("w#1", version="2", role="canary", key="a"))
    registry.register(service("w#1", version="2", role="canary", key="b"))
    registry.promote("a", "2")
    assert registry.lookup("api") == []
    assert redis_client.smembers(K.service_key("a")) == set()
    registry.promote("b", "2")
    assert [s.deployment_role for s in registry.lookup("api")] == ["primary"]


def test_deregistering_empties_every_index(redis_client: redis.Redis) -> None:
    registry = RedisRegistry(redis_client, namespace=NAMESPACE)
    registry.register(service("w#1", name="api"))
    registry.register(service("w#1", name="metrics"))
    registry.deregister("w#1")
    assert redis_client.keys(f"{NAMESPACE}:*") == []
