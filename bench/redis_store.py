"""The Redis store on a real redis-server on loopback, in one run: round trips per upsert (goal 1), upsert
latency p50/p99, and reading a deployment with 1,000 versions.

Starts its own redis-server (no persistence) on a free port. Round trips are counted at the client, one per
packet sent, and cross-checked against the server's own command statistics.

    python bench/redis_store.py [--upserts 2000] [--versions 1000] [--agents 10]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from backends.redis import RedisStore, connect
from backends.redis.server import LocalRedisServer
from mn_deploy_core.records import DeploymentRecord, Event, VersionRecord, deployment_id, iso_timestamp

KEY = "bench"


class CountingConnection(redis.Connection):
    """Counts what the client sends: one call per command, or per whole pipeline."""

    sent = 0

    def send_packed_command(self, *args: Any, **kwargs: Any) -> None:
        CountingConnection.sent += 1
        super().send_packed_command(*args, **kwargs)


def manifest(agents: int, version: int) -> dict[str, Any]:
    node = {"agent_type": "executor", "config": {"image": f"agent:{version}"}, "services": [{"name": "api"}]}
    return {"job_type": "service", "nodes": [{"node_id": f"worker-{i}", **node} for i in range(agents)]}


def record(number: int, agents: int) -> DeploymentRecord:
    stamp = iso_timestamp(0)
    return DeploymentRecord(
        deployment_id=deployment_id(KEY, number),
        deployment_key=KEY,
        status="running",
        description="Deployment is running",
        strategy="rolling",
        mode="agent_level",
        policy={"strategy": "rolling", "max_parallel": 2},
        target_manifest=manifest(agents, number),
        created_at=stamp,
        updated_at=stamp,
        changed_agent_ids=tuple(f"worker-{i}" for i in range(agents)),
    )


def event(n: int) -> Event:
    return Event("deployment_instance_healthy", float(n), iso_timestamp(n), {"instance_id": f"worker-{n}#1"})


def version(number: int, agents: int) -> VersionRecord:
    stamp = iso_timestamp(0)
    return VersionRecord(
        deployment_key=KEY,
        version=str(number),
        deployment_id=deployment_id(KEY, number),
        job_id=f"job-{number}",
        manifest=manifest(agents, number),
        spec_digest=f"{number:064x}",
        created_at=stamp,
        updated_at=stamp,
        stable=True,
    )


def evalsha_calls(client: redis.Redis) -> int:
    stats: dict[str, Any] = client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


def upserts(store: RedisStore, client: redis.Redis, n: int, agents: int) -> tuple[float, float, float, float]:
    """Round trips per upsert (client, server) and p50/p99 latency in ms, one event per save as a rollout does."""
    subject = record(store.allocate_deployment_number(KEY), agents)
    subject.revision = store.save_deployment(subject, [event(0)])
    latencies = []
    sent, evalsha = CountingConnection.sent, evalsha_calls(client)
    for i in range(1, n + 1):
        e = event(i)
        subject.with_event(e)
        started = time.perf_counter()
        subject.revision = store.save_deployment(subject, [e])
        latencies.append((time.perf_counter() - started) * 1000.0)
    per_upsert = (CountingConnection.sent - sent) / n
    server_side = (evalsha_calls(client) - evalsha) / n
    p50, p99 = statistics.quantiles(latencies, n=100)[49], statistics.quantiles(latencies, n=100)[98]
    return per_upsert, server_side, p50, p99


def read_with_versions(store: RedisStore, versions: int, agents: int, reads: int) -> tuple[float, float]:
    """Median ms and round trips to read a deployment and all its versions, as `mn deployment status` does."""
    for number in range(1, versions + 1):
        store.save_version(version(number, agents))
    subject = record(store.allocate_deployment_number(KEY), agents)
    store.save_deployment(subject, [])
    timings = []
    sent = CountingConnection.sent
    for _ in range(reads):
        started = time.perf_counter()
        loaded = store.load_deployment(subject.deployment_id)
        listed = store.list_versions(KEY)
        timings.append((time.perf_counter() - started) * 1000.0)
        assert loaded is not None and len(listed) == versions
    return statistics.median(timings), (CountingConnection.sent - sent) / reads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upserts", type=int, default=2000)
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--agents", type=int, default=10, help="agents in each manifest")
    parser.add_argument("--reads", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory, LocalRedisServer(Path(directory)) as server:
        client = connect(server.url, connection_class=CountingConnection)
        store = RedisStore(client, namespace="bench")
        per_upsert, server_side, p50, p99 = upserts(store, client, args.upserts, args.agents)
        read_ms, read_trips = read_with_versions(store, args.versions, args.agents, args.reads)
        client.close()
    print(f"redis-server on loopback, {args.agents}-agent manifests")
    print(f"round trips per upsert: {per_upsert:.2f} (goal 1; server saw {server_side:.2f} EVALSHA per upsert)")
    print(f"upsert latency over {args.upserts} upserts: p50 {p50:.3f} ms, p99 {p99:.3f} ms")
    print(f"read a deployment with {args.versions} versions: {read_ms:.2f} ms median, {read_trips:.0f} round trips")


if __name__ == "__main__":
    main()
