"""The real-time driver and the daemon around it.

The driver is tested against a fact source made of a queue (what it blocks for, when it wakes); the daemon, run in
threads, on a real redis-server with worker processes running tiny Python agents: leading, standing by, handing
over.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import fakeredis
import grpc
import pytest
import redis

from backends.live.clock import wall_ms
from backends.live.controller.daemon import DaemonConfig, run_daemon
from backends.live.controller.driver import Driver
from backends.live.controller.lease import Lease
from backends.loopback import free_port
from backends.memory import MemoryRegistry, MemoryStore
from backends.process import ProcessGroup
from backends.redis import Keys
from backends.redis.server import LocalRedisServer
from mn_deploy.live_cli import mn_deploy_command
from mn_deploy_core.controller import Controller
from mn_deploy_core.ports import Fact, FactKind
from mn_deploy_core.records import DeploymentRecord, InstanceRecord
from tests.live.conftest import ORDER_KEY, held, order_key_file
from tests.polling import wait_for
from tests.scripted import ScriptedRuntime, service_manifest

NAMESPACE = "mn_daemon"
K = Keys(NAMESPACE)


# ---- the driver, on a queue of facts -------------------------------------------------------------


class QueueFacts:
    """A fact source over a queue: records how long the driver asked to block, and what it acknowledged."""

    def __init__(self) -> None:
        self.queue: queue.Queue[tuple[str, Fact]] = queue.Queue()
        self.blocks: list[int] = []
        self.acked: list[str] = []
        self.wakes = 0
        self._ids = iter(range(1, 1_000_000))

    def report(self, instance_id: str, *kinds: FactKind) -> None:
        for kind in kinds:
            self.queue.put((f"{next(self._ids)}-0", Fact(instance_id, kind)))

    def read_facts(self, block_ms: int) -> list[tuple[str, Fact]]:
        self.blocks.append(block_ms)
        try:
            entries = [self.queue.get(timeout=block_ms / 1000)]
        except queue.Empty:
            return []
        while not self.queue.empty():
            entries.append(self.queue.get_nowait())
        return entries

    def ack(self, entry_ids: Sequence[str]) -> None:
        self.acked.extend(entry_ids)

    def expire_nodes(self) -> list[Fact]:
        return []

    def wake(self) -> None:
        self.wakes += 1
        self.report("wake", FactKind.PLACED)


@pytest.fixture
def lease_client() -> redis.Redis:
    return fakeredis.FakeRedis(decode_responses=True, protocol=2)


@contextmanager
def driving(
    controller: Controller, facts: QueueFacts, lease: Lease, stop: threading.Event | None = None, **options: Any
) -> Iterator[Driver]:
    stop = stop or threading.Event()
    assert lease.acquire(threading.Event()) is not None
    driver = Driver(controller, facts, lease, facts.wake, **options)
    thread = threading.Thread(target=driver.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield driver
    finally:
        stop.set()
        facts.wake()
        thread.join(5)
        assert not thread.is_alive()


def scripted_controller() -> tuple[Controller, ScriptedRuntime]:
    runtime = ScriptedRuntime()
    return Controller(MemoryStore(), runtime, MemoryRegistry()), runtime


def record(driver: Driver, control: Controller) -> DeploymentRecord:
    with driver.lock:
        return control.get("agent-api")


def test_the_driver_blocks_until_the_core_is_due_and_acknowledges_what_it_observed(lease_client: redis.Redis) -> None:
    control, runtime = scripted_controller()
    facts = QueueFacts()
    control.deploy(service_manifest(count=1, checks=0, update={"min_healthy_ms": 300}), now=wall_ms())
    (instance_id,) = runtime.order

    with driving(control, facts, Lease(lease_client, owner="a", namespace=NAMESPACE, ttl_ms=30_000)) as driver:
        ready_at = time.monotonic()
        facts.report(instance_id, FactKind.RUNNING, FactKind.READY)
        wait_for(lambda: record(driver, control).status == "successful", what="the rollout")
        took = time.monotonic() - ready_at

    assert 0.3 <= took < 1.5, "it waited for the window to end, not for the 10 s renewal"
    assert facts.acked[:2] == ["1-0", "2-0"]
    waits_for_the_window = [b for b in facts.blocks if 200 <= b <= 300]
    assert waits_for_the_window, f"the driver never blocked until min_healthy ended: {facts.blocks}"
    assert len(facts.blocks) <= 6, f"the driver polled: {facts.blocks}"


def test_a_call_that_makes_the_core_due_sooner_wakes_the_driver(lease_client: redis.Redis) -> None:
    """Idle, the driver blocks for a whole renewal interval (10 s here); a deploy whose healthy deadline is 400 ms
    away must not wait for that."""
    control, runtime = scripted_controller()
    facts = QueueFacts()
    manifest = service_manifest(count=1, checks=0, update={"min_healthy_ms": 100, "healthy_deadline_ms": 400})

    with driving(control, facts, Lease(lease_client, owner="a", namespace=NAMESPACE, ttl_ms=30_000)) as driver:
        wait_for(lambda: facts.blocks and facts.blocks[-1] > 5000, what="the driver to block")
        with driver.lock:
            control.deploy(manifest, now=wall_ms())
        assert facts.wakes == 1
        with driver.lock:
            control.get("agent-api")
        assert facts.wakes == 1, "a call that leaves the next wakeup alone wakes nothing"
        wait_for(lambda: record(driver, control).counters.unhealthy >= 1, timeout_s=2.0, what="the healthy deadline")

    assert len(runtime.order) == 2, "the unhealthy instance was replaced"


def test_what_calls_left_queued_is_settled_before_facts_are_acknowledged_and_after_every_call(
    lease_client: redis.Redis,
) -> None:
    """The inputs a trace keeps ride with the next decision's commit; a fact that decides nothing leaves its input
    queued, and the driver must store it before acknowledging the fact (else a crash would lose it for good)."""
    control, runtime = scripted_controller()
    facts = QueueFacts()
    control.deploy(service_manifest(count=1, checks=0), now=wall_ms())
    (instance_id,) = runtime.order
    order: list[str] = []
    acknowledge = facts.ack

    def ack(entry_ids: Sequence[str]) -> None:
        order.append("ack")
        acknowledge(entry_ids)

    facts.ack = ack  # type: ignore[method-assign]

    lease = Lease(lease_client, owner="a", namespace=NAMESPACE, ttl_ms=30_000)
    with driving(control, facts, lease, settle=lambda: order.append("settle")) as driver:
        facts.report(instance_id, FactKind.RUNNING)
        wait_for(lambda: "ack" in order, what="the fact to be acknowledged")
        with driver.lock:
            order.append("call")
        wait_for(lambda: order[-1] == "settle", what="the settle after the call")

    first_ack = order.index("ack")
    assert order[first_ack - 1] == "settle", f"settled before acknowledging: {order}"
    assert order[order.index("call") + 1] == "settle", f"settled after the call: {order}"


@pytest.mark.parametrize("interval_s", [3600.0, 0.25])
def test_chores_run_at_the_start_of_a_term_and_then_every_interval(
    lease_client: redis.Redis, interval_s: float
) -> None:
    """Renewals come every 100 ms: an hour's interval leaves only the term's first round; a short one repeats,
    never sooner than the interval."""
    control, _ = scripted_controller()
    facts = QueueFacts()
    runs: list[float] = []
    lease = Lease(lease_client, owner="a", namespace=NAMESPACE, ttl_ms=300)

    def enough() -> bool:
        return len(facts.blocks) > 5 if interval_s > 1 else len(runs) >= 3  # five passes went by; three rounds

    with driving(control, facts, lease, chores=lambda: runs.append(time.monotonic()), chores_interval_s=interval_s):
        wait_for(enough, 5.0, "the driver's passes")

    assert len(runs) == 1 if interval_s > 1 else len(runs) >= 3
    assert all(later - earlier >= interval_s for earlier, later in itertools.pairwise(runs))


class SlowController(Controller):
    """Each fact takes `fold_s` to fold in, as on a host busy starting hundreds of agents."""

    fold_s = 0.03

    def observe(self, fact: Fact, now: float) -> None:
        time.sleep(self.fold_s)  # the cost of the work, not a wait for anything
        super().observe(fact, now)


def test_a_batch_of_facts_longer_than_the_lease_renews_it_on_the_way(lease_client: redis.Redis) -> None:
    """30 facts of 30 ms are 0.9 s of work, three times the 300 ms TTL: the term goes on, every fact is taken in
    and acknowledged, and the lease was never lost (a renewal found it still ours)."""
    control = SlowController(MemoryStore(), ScriptedRuntime(), MemoryRegistry())
    facts = QueueFacts()
    lease = Lease(lease_client, owner="a", namespace=NAMESPACE, ttl_ms=300)
    stop = threading.Event()
    for n in range(30):
        facts.report(f"gone-{n}", FactKind.RUNNING)

    with driving(control, facts, lease, stop):
        wait_for(lambda: len(facts.acked) == 30, 5.0, "the batch to be acknowledged")
        assert lease.held(), "the term ended during the batch"
        assert lease_client.get(K.controller_lease) is not None


def test_the_driver_stops_acting_when_its_lease_is_taken(lease_client: redis.Redis) -> None:
    control, _ = scripted_controller()
    facts = QueueFacts()
    lease = Lease(lease_client, owner="a", namespace=NAMESPACE, ttl_ms=600)
    stop = threading.Event()
    assert lease.acquire(threading.Event()) is not None
    driver = Driver(control, facts, lease, facts.wake)
    thread = threading.Thread(target=driver.run, args=(stop,), daemon=True)
    thread.start()

    lease_client.set(K.controller_lease, "b:99")
    thread.join(2.0)

    assert not thread.is_alive(), "the driver went on after its renewal failed"
    assert not lease.held()
    stop.set()


# ---- the daemon, on a real redis-server with in-process workers --------------------------------------

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


def agent_manifest(tag: str, *, count: int = 3, **update: Any) -> dict[str, Any]:
    """`count` agents that are up as soon as their process is (no checks); `tag` changes the spec."""
    return {
        "manifest_version": "1",
        "graph_id": "agent-api",
        "job_type": "service",
        "deployment": {"key": "agent-api"},
        "nodes": [
            {"node_id": "worker", "agent_type": "executor", "count": count, "config": {"command": SLEEPER, "tag": tag}}
        ],
        "edges": [],
        "policies": {"update": {"min_healthy_ms": 200, "max_parallel": 1, **update}},
    }


@pytest.fixture
def redis_url(redis_server: LocalRedisServer, real_redis: redis.Redis) -> str:
    return redis_server.url


@contextmanager
def daemon(url: str, address: str, owner: str, ttl_ms: int = 900) -> Iterator[threading.Event]:
    """`run_daemon` in a thread; set the event it yields to stop it (as SIGTERM does)."""
    stop = threading.Event()
    config = DaemonConfig(
        url, address, namespace=NAMESPACE, lease_ttl_ms=ttl_ms, node_ttl_ms=1000, owner=owner, order_key=ORDER_KEY
    )
    thread = threading.Thread(target=run_daemon, args=(config, stop), daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(10)
        assert not thread.is_alive()


@contextmanager
def workers(url: str, root: Path, *nodes: str) -> Iterator[None]:
    """Worker processes (forking agents from a process that also runs gRPC threads is not safe)."""
    env = {**os.environ, "MN_REDIS_NAMESPACE": NAMESPACE, "MN_ORDER_KEY_FILE": str(order_key_file(root))}
    args = ["agent", "worker", "--redis", url, "--heartbeat-ms", "200", "--grace-ms", "1000"]
    children = [
        ProcessGroup([*mn_deploy_command(), *args, "--node", node, "--workdir", str(root / node)], cwd=root, env=env)
        for node in nodes
    ]
    try:
        yield
    finally:
        for child in children:
            child.terminate(5.0)
        for child in children:
            child.wait()


@pytest.fixture
def sdk(mn_home: Path) -> Iterator[Callable[[str], Any]]:
    """Official SDK clients by address."""
    from mn_sdk import Client

    made: list[Any] = []

    def client(address: str) -> Any:
        made.append(Client(target=address, timeout=5))
        return made[-1]

    yield client
    for c in made:
        c.channel.close()


def deployment(client: Any, id_or_key: str = "agent-api") -> dict[str, Any]:
    return dict(json.loads(client.get_deployment(id_or_key)))


def answering(client: Any) -> dict[str, Any] | None:
    try:
        return deployment(client)
    except grpc.RpcError as error:
        if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND):
            return None
        raise


def live_instances(client: redis.Redis) -> list[InstanceRecord]:
    return [InstanceRecord.from_json(json.loads(raw)) for raw in client.hvals(K.live_instances)]


def test_the_leader_restores_and_the_standby_takes_over_mid_rollout(
    redis_url: str, real_redis: redis.Redis, sdk: Callable[[str], Any], tmp_path: Path
) -> None:
    address = f"127.0.0.1:{free_port()}"
    api = sdk(address)
    with workers(redis_url, tmp_path, "node-1", "node-2"), daemon(redis_url, address, "a") as leader:
        wait_for(lambda: _serving(api), what="the leader")
        api.deploy_job(json.dumps(agent_manifest("v1")), {})
        wait_for(lambda: deployment(api)["status"] == "successful", what="v1")
        with daemon(redis_url, address, "b"):
            api.deploy_job(json.dumps(agent_manifest("v2", min_healthy_ms=700)), {})
            wait_for(lambda: deployment(api)["counters"]["healthy"] >= 1, what="v2's first agent")
            leader.set()  # a clean stop: the lease is given up and the standby takes over
            wait_for(lambda: real_redis.get(K.controller_lease) == "b:2", what="the standby to lead")
            done = wait_for(lambda: (d := answering(api)) and d["status"] == "successful" and d, what="v2")

    assert done["target_version"] == "2"
    assert done["counters"]["placed"] == 3, "no agent was placed twice"
    instances = live_instances(real_redis)
    assert sorted(i.agent_id for i in instances) == ["worker-0", "worker-1", "worker-2"]
    assert {i.deployment_id for i in instances} == {done["deployment_id"]}


def test_a_leader_whose_lease_is_taken_stops_serving_and_stands_by(
    redis_url: str, real_redis: redis.Redis, sdk: Callable[[str], Any]
) -> None:
    address = f"127.0.0.1:{free_port()}"
    api = sdk(address)
    with daemon(redis_url, address, "a"):
        wait_for(lambda: real_redis.get(K.controller_lease) == "a:1", what="the leader")
        wait_for(lambda: _serving(api), what="gRPC")
        real_redis.set(K.controller_lease, "thief:7", px=1500)

        wait_for(lambda: not _serving(api), timeout_s=2.0, what="the leader to stop serving")
        wait_for(lambda: real_redis.get(K.controller_lease) == "a:2", timeout_s=5.0, what="a new term")
        wait_for(lambda: _serving(api), what="gRPC again")


def test_a_new_leader_whose_address_is_still_taken_leads_and_serves_once_it_is_free(
    redis_url: str, real_redis: redis.Redis, sdk: Callable[[str], Any], caplog: pytest.LogCaptureFixture
) -> None:
    """The leader it replaces may still hold the address (paused, or not yet aware its lease is gone): the new
    one keeps its term and waits, rather than exiting and leaving no leader."""
    address = f"127.0.0.1:{free_port()}"
    with held(address) as old_leader, daemon(redis_url, address, "a"):
        wait_for(lambda: "leading without serving until it is free" in caplog.text, what="the leader to wait")
        assert real_redis.get(K.controller_lease) == "a:1"
        old_leader.close()

        api = sdk(address)
        wait_for(lambda: _serving(api), what="gRPC once the address is free")
        assert real_redis.get(K.controller_lease) == "a:1", "the same term"


def test_an_address_this_host_can_never_bind_ends_the_daemon_and_frees_the_lease(
    redis_url: str, real_redis: redis.Redis
) -> None:
    config = DaemonConfig(redis_url, "203.0.113.9:55051", namespace=NAMESPACE, lease_ttl_ms=900, owner="a")

    with pytest.raises(RuntimeError, match="Failed to bind"):
        run_daemon(config, threading.Event())
    assert real_redis.get(K.controller_lease) is None


def _serving(client: Any) -> bool:
    try:
        client.list_deployments()
    except grpc.RpcError as error:
        if error.code() is grpc.StatusCode.UNAVAILABLE:
            return False
        raise
    return True


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_controller_run_stops_cleanly_on_a_stop_signal_and_gives_the_lease_up(
    redis_url: str, real_redis: redis.Redis, tmp_path: Path, signum: signal.Signals
) -> None:
    """SIGHUP too (the terminal that started it closed): the standby need not wait for the TTL."""
    env = {**os.environ, "MN_REDIS_NAMESPACE": NAMESPACE, "MN_ORDER_KEY_FILE": str(order_key_file(tmp_path))}
    args = ["controller", "run", "--redis", redis_url, "--grpc", f"127.0.0.1:{free_port()}", "--lease-ttl-ms", "60000"]
    controller = ProcessGroup([*mn_deploy_command(), *args], cwd=tmp_path, env=env)
    try:
        wait_for(lambda: real_redis.get(K.controller_lease) is not None, what="the controller to lead")
        os.kill(controller.pid, signum)
        code = controller.wait(30)
    finally:
        controller.kill()
        controller.wait()

    assert code == 0
    assert real_redis.get(K.controller_lease) is None, "the lease was not given up"
