"""Each store and registry test runs on every backend: in-memory, fakeredis and a real redis-server."""

from __future__ import annotations

import fakeredis
import pytest
import redis

from backends.memory import MemoryRegistry, MemoryStore
from backends.redis import RedisRegistry, RedisStore
from mn_deploy_core.ports import Registry, Store

NAMESPACE = "mn_test"


@pytest.fixture(params=["fakeredis", "redis"])
def redis_client(request: pytest.FixtureRequest) -> redis.Redis:
    """For Redis-only tests: the two Redis backends of the contract suite."""
    return _client(request)


@pytest.fixture(params=["memory", "fakeredis", "redis"])
def store(request: pytest.FixtureRequest) -> Store:
    if request.param == "memory":
        return MemoryStore()
    return RedisStore(_client(request), namespace=NAMESPACE)


@pytest.fixture(params=["memory", "fakeredis", "redis"])
def registry(request: pytest.FixtureRequest) -> Registry:
    if request.param == "memory":
        return MemoryRegistry()
    return RedisRegistry(_client(request), namespace=NAMESPACE)


def _client(request: pytest.FixtureRequest) -> redis.Redis:
    """An empty database: a fresh fakeredis, or the session's real server flushed."""
    if request.param == "fakeredis":
        return fakeredis.FakeRedis(decode_responses=True, protocol=2)
    client: redis.Redis = request.getfixturevalue("real_redis")
    return client
