"""Fixtures the whole suite shares. Keep them generic: a world or a controller belongs to its own package."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from backends.redis.client import connect
from backends.redis.server import LocalRedisServer, executable

RedisServerFactory = Callable[..., LocalRedisServer]


@pytest.fixture(scope="session")
def redis_server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServerFactory]:
    """Starts real redis-servers on free loopback ports (`appendonly=True` to persist); all stop at the end.

    When none can start the tests that need one are skipped, or fail where CI promised a server
    (MN_REQUIRE_REAL_REDIS=1).
    """
    started: list[LocalRedisServer] = []

    def start(*, appendonly: bool = False) -> LocalRedisServer:
        try:
            if executable() is None:
                raise RuntimeError("redis-server is not installed")
            server = LocalRedisServer(tmp_path_factory.mktemp("redis"), appendonly=appendonly)
            server.start()
        except RuntimeError as exc:
            if os.environ.get("MN_REQUIRE_REAL_REDIS") == "1":
                pytest.fail(f"{exc}; MN_REQUIRE_REAL_REDIS=1 requires a real redis-server")
            pytest.skip(str(exc))
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def redis_server(redis_server_factory: RedisServerFactory) -> LocalRedisServer:
    """One real redis-server for the session; nothing is persisted."""
    return redis_server_factory()


@pytest.fixture
def real_redis(redis_server: LocalRedisServer) -> Iterator[redis.Redis]:
    """A client of the session's server, on an empty database."""
    client = connect(redis_server.url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(scope="session")
def mn_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The SDK writes its config and logs under MN_HOME (default ~/.mn); keep them in a temporary directory."""
    home = tmp_path_factory.mktemp("mn_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MN_HOME", str(home))
        patch.delenv("MN_GRPC_TARGET", raising=False)
        patch.delenv("MN_GRPC_AUTH_TOKEN", raising=False)  # a developer's own token is not the tests'
        patch.delenv("MN_GRPC_AUTH_TOKEN_FILE", raising=False)
        yield home
