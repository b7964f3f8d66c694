"""Concurrent writers in separate processes against a real redis-server."""

from __future__ import annotations

import multiprocessing
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any

import redis

from backends.redis import RedisStore, connect
from backends.redis.server import LocalRedisServer
from mn_deploy_core.errors import ConflictError
from mn_deploy_core.records import deployment_id
from tests.backends import samples
from tests.backends.conftest import NAMESPACE

WORKERS = 8
DEPLOYS_PER_WORKER = 25
ROUNDS = 10
TIMEOUT_S = 60

spawn = multiprocessing.get_context("spawn")


def _deploy(url: str, key: str, start: Barrier, results: Queue[Any]) -> None:
    """What the controller does per deploy: number, version, version record, deployment record."""
    store = RedisStore(connect(url), namespace=NAMESPACE)
    start.wait(TIMEOUT_S)
    mine = []
    for _ in range(DEPLOYS_PER_WORKER):
        number = store.allocate_deployment_number(key)
        version = store.allocate_version(key)
        store.save_version(samples.version(key, version, deployment=deployment_id(key, number)))
        store.save_deployment(samples.deployment(key, number, current_version=version), [samples.event()])
        mine.append((number, version))
    results.put(mine)


def _move(url: str, side: str, start: Barrier, results: Queue[Any]) -> None:
    """Each round, read the round's deployment, wait for the other writer, then move it under our key.

    Both read the same revision, so exactly one of them conflicts; it reloads and saves again.
    """
    store = RedisStore(connect(url), namespace=NAMESPACE)
    conflicts = []
    for r in range(ROUNDS):
        record = store.load_deployment(deployment_id(f"a{r}", r + 1))
        start.wait(TIMEOUT_S)
        while True:
            assert record is not None
            record.deployment_key = f"{side}{r}"
            try:
                store.save_deployment(record, [samples.event("deployment_moved", side=side)])
                break
            except ConflictError:
                conflicts.append(r)
                record = store.load_deployment(record.deployment_id)
    results.put((side, conflicts))


def _run(target: Any, args_per_worker: list[tuple[Any, ...]]) -> list[Any]:
    start, results = spawn.Barrier(len(args_per_worker)), spawn.Queue()
    workers = [spawn.Process(target=target, args=(*args, start, results)) for args in args_per_worker]
    for w in workers:
        w.start()
    collected = [results.get(timeout=TIMEOUT_S) for _ in workers]
    for w in workers:
        w.join(TIMEOUT_S)
        assert w.exitcode == 0
    return collected


def test_concurrent_deploys_under_one_key_never_share_a_version(
    redis_server: LocalRedisServer, real_redis: redis.Redis
) -> None:
    per_worker = _run(_deploy, [(redis_server.url, "agent-api")] * WORKERS)
    deploys = [d for mine in per_worker for d in mine]
    total = WORKERS * DEPLOYS_PER_WORKER
    assert sorted(int(v) for _, v in deploys) == list(range(1, total + 1))
    assert len({n for n, _ in deploys}) == total
    store = RedisStore(real_redis, namespace=NAMESPACE)
    assert len(store.list_versions("agent-api")) == total
    assert len(store.list_deployments(key="agent-api")) == total
    newest = max(n for n, _ in deploys)
    assert store.current_deployment_id("agent-api") == deployment_id("agent-api", newest)


def test_concurrent_moves_between_two_keys_leave_exactly_one_owner(
    redis_server: LocalRedisServer, real_redis: redis.Redis
) -> None:
    """Reference §18 #9, 10 rounds: the loser of each race conflicts, retries and so owns the record."""
    store = RedisStore(real_redis, namespace=NAMESPACE)
    for r in range(ROUNDS):
        store.save_deployment(samples.deployment(f"a{r}", r + 1), [])
    conflicts = dict(_run(_move, [(redis_server.url, "a"), (redis_server.url, "b")]))
    assert sorted(conflicts["a"] + conflicts["b"]) == list(range(ROUNDS))
    for r in range(ROUNDS):
        dep = deployment_id(f"a{r}", r + 1)
        record = store.load_deployment(dep)
        assert record is not None
        loser = "a" if r in conflicts["a"] else "b"
        assert record.deployment_key == f"{loser}{r}"
        owners = [side for side in "ab" if store.current_deployment_id(f"{side}{r}") == dep]
        assert owners == [loser]
        assert [side for side in "ab" if store.list_deployments(key=f"{side}{r}")] == [loser]
        assert len(store.deployment_events(dep)) == 2
