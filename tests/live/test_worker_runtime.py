"""What a worker keeps in Redis of its instances' processes (backends/redis/instance_runtime.py), with a real
redis-server and real agent processes: the entry appears when the process runs, follows a restart, and goes when
the instance stops or completes, when the worker stops, or (by the heartbeat's TTL) when the worker dies.

Nothing sleeps to synchronise: tests poll Redis and /proc, each with a deadline.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable
from dataclasses import replace

import redis

from backends.live.clock import wall_ms
from backends.live.controller.runtime import RedisRuntime
from backends.live.worker.daemon import Worker
from backends.redis.bundles import RedisBundleStore
from backends.redis.instance_runtime import RUNNING, InstanceRuntime, ProcessInfo
from mn_deploy_core.ports import Fact, FactKind, Placement, RestartPolicy
from tests.live import test_worker
from tests.live.conftest import DEADLINE_S, Facts
from tests.live.test_worker import KEYS, NAMESPACE, agent_node, agent_pids, example, payloads, placement, process_env
from tests.polling import wait_for

# test_worker's fixtures: its workers (in threads, or as a process) and bundle store, and the token its agents carry
run_token = test_worker.run_token
start_worker = test_worker.start_worker
worker_process = test_worker.worker_process
bundles = test_worker.bundles

RESTARTS = RestartPolicy(attempts=3, delay_ms=50)


def hello(store: RedisBundleStore, runtime: RedisRuntime) -> Placement:
    """The example agent, whose http check probes its PORT, placed."""
    node = example("hello/v1.json")["nodes"][0]
    p = placement(node, bundle=store.put(payloads("hello/v1.json")), restart=RESTARTS)
    runtime.place(p)
    return p


def process_of(real_redis: redis.Redis, instance_id: str) -> tuple[str, ProcessInfo | None] | None:
    """The instance's node and entry, as the controller reads them."""
    return InstanceRuntime(real_redis, namespace=NAMESPACE).read([instance_id]).get(instance_id)


def running_process(real_redis: redis.Redis, instance_id: str, restarts: int = 0) -> ProcessInfo:
    """Wait until the instance's entry says its process runs, after `restarts` restarts, with a live pid."""

    def found() -> ProcessInfo | None:
        where = process_of(real_redis, instance_id)
        process = where[1] if where else None
        if process is None or (process.state, process.restarts) != (RUNNING, restarts):
            return None
        return process if process.pid in agent_pids(instance_id) else None

    process: ProcessInfo = wait_for(found, what=f"{instance_id} running after {restarts} restart(s)")
    return process


def test_the_entry_names_the_running_process_follows_a_restart_and_goes_with_a_stop(
    start_worker: Callable[..., Worker],
    runtime: RedisRuntime,
    facts: Facts,
    bundles: RedisBundleStore,
    real_redis: redis.Redis,
) -> None:
    start_worker("n1")
    before = wall_ms()

    p = hello(bundles, runtime)
    facts.until(Fact(p.instance_id, FactKind.CHECK_PASSING, "health"))

    first = running_process(real_redis, p.instance_id)
    assert process_of(real_redis, p.instance_id) == ("n1", first)
    assert first.pid is not None and first.port == int(process_env(first.pid)["PORT"])
    assert before <= first.since_ms <= wall_ms()

    subprocess.run(["kill", "-KILL", str(first.pid)], check=True)
    second = running_process(real_redis, p.instance_id, restarts=1)
    assert second.pid != first.pid and second.since_ms > first.since_ms

    runtime.stop(p.instance_id)
    wait_for(lambda: not real_redis.hexists(KEYS.node_runtime("n1"), p.instance_id), what="the entry to go")
    assert process_of(real_redis, p.instance_id) is None


def test_a_completed_batch_instance_leaves_no_entry(
    start_worker: Callable[..., Worker], runtime: RedisRuntime, facts: Facts, real_redis: redis.Redis
) -> None:
    start_worker("n1")
    holding = placement(agent_node(["python3", "-c", "import time; time.sleep(60)"]))
    done = replace(placement(agent_node(["python3", "-c", "pass"])), batch=True)
    runtime.place(holding)
    runtime.place(done)

    facts.until(Fact(done.instance_id, FactKind.COMPLETED))
    running_process(real_redis, holding.instance_id)  # the node's hash is there, with the other instance

    assert not real_redis.hexists(KEYS.node_runtime("n1"), done.instance_id)


def test_a_stopped_worker_deletes_the_hash(
    worker_process: subprocess.Popen[bytes], runtime: RedisRuntime, bundles: RedisBundleStore, real_redis: redis.Redis
) -> None:
    wait_for(lambda: real_redis.exists(KEYS.node_heartbeat("n1")), what="node n1 to register")
    running_process(real_redis, hello(bundles, runtime).instance_id)

    worker_process.send_signal(signal.SIGTERM)

    assert worker_process.wait(DEADLINE_S) == 0
    assert not real_redis.exists(KEYS.node_runtime("n1"))


def test_a_killed_workers_hash_expires_with_its_heartbeat(
    worker_process: subprocess.Popen[bytes], runtime: RedisRuntime, bundles: RedisBundleStore, real_redis: redis.Redis
) -> None:
    wait_for(lambda: real_redis.exists(KEYS.node_heartbeat("n1")), what="node n1 to register")
    p = hello(bundles, runtime)
    running_process(real_redis, p.instance_id)
    assert 0 < real_redis.pttl(KEYS.node_runtime("n1")) <= 2000  # the node TTL the runtime asked for

    worker_process.send_signal(signal.SIGKILL)
    worker_process.wait()

    wait_for(lambda: not real_redis.exists(KEYS.node_runtime("n1")), what="the hash to expire")
    assert [f.instance_id for f in runtime.expire_nodes()] == [p.instance_id], "the node is lost with it"
