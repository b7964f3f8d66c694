"""Workers on a real redis-server running real agent processes, observed through RedisRuntime like a controller.

Nothing sleeps to synchronise: tests wait for facts on the stream, or poll /proc, each with a deadline.
Agent processes are found by their environment: MN_INSTANCE_ID, and MN_BUNDLE_DIR under the test's own directory,
which tells them from the agents of another test run on the same machine.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis

from backends.live.clock import wall_ms
from backends.live.controller.runtime import RedisRuntime
from backends.live.worker.daemon import Worker
from backends.live.worker.supervisor import AgentUser, materialise
from backends.loopback import free_port
from backends.memory import MemoryRegistry, MemoryStore
from backends.protocol import wire
from backends.protocol.bundles import UnsafePayloadPathError
from backends.protocol.signing import OrderKey
from backends.redis.bundles import RedisBundleStore
from backends.redis.client import connect
from backends.redis.keys import Keys
from backends.redis.server import LocalRedisServer
from mn_deploy.bundle_reader import read_bundle
from mn_deploy_core.controller import Controller
from mn_deploy_core.manifest import load_manifest
from mn_deploy_core.ports import Fact, FactKind, Placement, RestartPolicy, Role
from tests.live.conftest import DEADLINE_S, ORDER_KEY, Facts, order_key_file
from tests.placements import a_placement
from tests.polling import wait_for

NAMESPACE = "mn_test"
KEYS = Keys(NAMESPACE)
EXAMPLES = Path(__file__).parents[2] / "examples" / "bundles"
GRACE_MS = 300
RUN_VARIABLE = "MN_TEST_RUN"
NO_RESTARTS = RestartPolicy(attempts=0, delay_ms=50)


# ---- helpers -----------------------------------------------------------------------------------


def payloads(bundle: str) -> dict[str, bytes]:
    return dict(read_bundle(EXAMPLES / bundle).payloads)


def example(bundle: str) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads(read_bundle(EXAMPLES / bundle).manifest_json)
    return manifest


def check_names(node: Mapping[str, Any]) -> tuple[str, ...]:
    """As the core names them (manifest.py, `_agent_checks`)."""
    return tuple(
        str(check.get("name") or f"{service['name']}:{i}")
        for service in node.get("services", [])
        for i, check in enumerate(service.get("checks", []))
    )


def agent_node(command: Sequence[str] | str, checks: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    services = [{"name": "svc", "checks": list(checks)}]
    return {"node_id": "web", "agent_type": "executor", "config": {"command": command}, "services": services}


def placement(node: Mapping[str, Any], *, restart: RestartPolicy = NO_RESTARTS, bundle: str | None = None) -> Placement:
    return a_placement(
        instance_id=f"dep_hello_1.web.{uuid.uuid4().hex[:8]}",
        deployment_version="7",
        role=Role.CANARY,
        phase="canary",
        node=node,
        checks=check_names(node),
        restart=restart,
        bundle=bundle,
    )


def agent_pids(instance_id: str | None = None) -> list[int]:
    """Live agent processes (zombies have no environment) this test started, of one instance if given."""
    inside = os.environ[RUN_VARIABLE] + os.sep
    found = []
    for entry in Path("/proc").iterdir():
        try:
            env = process_env(int(entry.name)) if entry.name.isdigit() else {}
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if env.get("MN_BUNDLE_DIR", "").startswith(inside) and instance_id in (None, env.get("MN_INSTANCE_ID")):
            found.append(int(entry.name))
    return found


def process_env(pid: int) -> dict[str, str]:
    pairs = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace").split("\0")
    return dict(pair.split("=", 1) for pair in pairs if "=" in pair)


def ask(instance_id: str, path: str = "/") -> Any:
    """GET from the instance's agent; None while it does not listen yet (http.client, so no proxy from the
    environment gets in the way)."""
    for pid in agent_pids(instance_id):
        try:
            port = process_env(pid)["PORT"]
        except (OSError, KeyError):  # gone, or a shim (pyenv's python3) that has not exec'd the agent yet
            continue
        connection = http.client.HTTPConnection("127.0.0.1", int(port), timeout=5)
        try:
            connection.request("GET", path)
            return json.loads(connection.getresponse().read())
        except ConnectionRefusedError:
            continue
        finally:
            connection.close()
    return None


# ---- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def run_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The test's directory, under which its workers make their instances' directories: this tells this test's
    agents (by their MN_BUNDLE_DIR) from a concurrent run's."""
    monkeypatch.setenv(RUN_VARIABLE, str(tmp_path))


@pytest.fixture
def bundles(real_redis: redis.Redis) -> RedisBundleStore:
    return RedisBundleStore(real_redis, namespace=NAMESPACE)


@pytest.fixture
def start_worker(
    redis_server: LocalRedisServer, real_redis: redis.Redis, runtime: RedisRuntime, tmp_path: Path
) -> Iterator[Callable[..., Worker]]:
    """Workers in threads of the test process, each stopped (with its agents) at the end of the test."""
    running: list[tuple[threading.Event, threading.Thread, redis.Redis]] = []

    def start(
        node: str = "n1", *, grace_ms: int = GRACE_MS, workdir: Path | None = None, run_as: AgentUser | None = None
    ) -> Worker:
        """`workdir` defaults to the node's directory under the test's; `run_as`: the agents' user."""
        client = connect(redis_server.url)
        worker = Worker(
            client,
            node,
            namespace=NAMESPACE,
            workdir=workdir or tmp_path / node,
            heartbeat_ms=50,
            grace_ms=grace_ms,
            order_key=ORDER_KEY,
            run_as=run_as,
        )
        stop = threading.Event()
        thread = threading.Thread(target=worker.run, args=(stop,), name=f"worker {node}", daemon=True)
        thread.start()
        running.append((stop, thread, client))
        wait_for(lambda: real_redis.exists(KEYS.node_heartbeat(node)), what=f"node {node} to register")
        return worker

    yield start
    for stop, _, _ in running:
        stop.set()
    for _, thread, client in running:
        thread.join(DEADLINE_S)
        assert not thread.is_alive()
        client.close()


@pytest.fixture
def worker_process(redis_server: LocalRedisServer, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`mn-deploy agent worker` as its own process, killed at the end if the test left it running."""
    cli = Path(sys.executable).with_name("mn-deploy")
    env = {**os.environ, "MN_REDIS_NAMESPACE": NAMESPACE, "MN_ORDER_KEY_FILE": str(order_key_file(tmp_path))}
    args = ["agent", "worker", "--redis", redis_server.url, "--node", "n1", "--workdir", str(tmp_path / "n1")]
    process = subprocess.Popen([str(cli), *args, "--heartbeat-ms", "50", "--grace-ms", str(GRACE_MS)], env=env)
    yield process
    if process.poll() is None:
        process.kill()
        process.wait()


# ---- running an agent --------------------------------------------------------------------------


def test_the_worker_runs_the_example_agent_from_its_bundle(
    start_worker: Callable[..., Worker], runtime: RedisRuntime, facts: Facts, bundles: RedisBundleStore
) -> None:
    start_worker()
    node = example("hello/v1.json")["nodes"][0]
    p = placement(node, bundle=bundles.put(payloads("hello/v1.json")))

    runtime.place(p)
    kinds = facts.until(Fact(p.instance_id, FactKind.CHECK_PASSING, "health"))

    assert kinds[:3] == ["placed", "running", "ready"]
    [pid] = agent_pids(p.instance_id)
    env = process_env(pid)
    expected = {
        "MN_AGENT_ID": "web",
        "MN_INSTANCE_ID": p.instance_id,
        "MN_DEPLOYMENT_KEY": "hello",
        "MN_DEPLOYMENT_VERSION": "7",
        "MN_DEPLOYMENT_ROLE": "canary",
        "MN_BUNDLE_DIR": os.readlink(f"/proc/{pid}/cwd"),
    }
    assert {name: env.get(name) for name in expected} == expected
    assert sorted(os.listdir(env["MN_BUNDLE_DIR"])) == ["agent.py"]
    assert ask(p.instance_id) == {
        "greeting": "hello from v1",
        "version": "7",
        "agent_id": "web",
        "instance_id": p.instance_id,
        "role": "canary",
    }


def test_a_broken_version_fails_its_health_check(
    start_worker: Callable[..., Worker], runtime: RedisRuntime, facts: Facts, bundles: RedisBundleStore
) -> None:
    start_worker()
    p = placement(example("hello/v2-broken.json")["nodes"][0], bundle=bundles.put(payloads("hello/v2-broken.json")))

    runtime.place(p)
    kinds = facts.until(Fact(p.instance_id, FactKind.CHECK_FAILING, "health"))

    assert "check_passing:health" not in kinds
    assert wait_for(lambda: ask(p.instance_id), what="the agent to answer")["greeting"] == "hello from v2"


def test_http_tcp_and_exec_checks_pass_and_fail(
    start_worker: Callable[..., Worker], runtime: RedisRuntime, facts: Facts, bundles: RedisBundleStore, tmp_path: Path
) -> None:
    start_worker()
    fast = {"interval_ms": 100, "timeout_ms": 1000}
    closed = free_port()
    checks = [
        {"name": "http-ok", "type": "http", "path": "/health", **fast},
        {"name": "http-404", "type": "http", "path": "/missing", **fast},
        {"name": "tcp-ok", "type": "tcp", **fast},
        {"name": "tcp-closed", "type": "tcp", "port": closed, **fast},
        {
            "type": "exec",
            "command": ["python3", "-c", "import os, sys; sys.exit(0 if os.environ['PORT'] else 1)"],
            **fast,
        },
        {"type": "exec", "command": ["false"], **fast},
    ]
    p = placement(agent_node(["python3", "agent.py"], checks), bundle=bundles.put(payloads("hello/v1.json")))

    runtime.place(p)
    for name in ("http-ok", "tcp-ok", "svc:4"):
        facts.until(Fact(p.instance_id, FactKind.CHECK_PASSING, name))
    for name in ("http-404", "tcp-closed", "svc:5"):
        facts.until(Fact(p.instance_id, FactKind.CHECK_FAILING, name))

    passed = {f.check for f in facts.seen if f.kind is FactKind.CHECK_PASSING}
    assert passed.isdisjoint({"http-404", "tcp-closed", "svc:5"})


# ---- restarts and failures ---------------------------------------------------------------------


def test_an_exiting_command_is_restarted_until_its_attempts_are_used_up(
    start_worker: Callable[..., Worker], runtime: RedisRuntime, facts: Facts
) -> None:
    start_worker()
    p = placement(agent_node(["python3", "-c", "raise SystemExit(3)"]), restart=RestartPolicy(attempts=2, delay_ms=50))

    runtime.place(p)

    once = ["running", "ready", "exited"]
    assert facts.until(Fact(p.instance_id, FactKind.FAILED)) == [
        "placed", *once, "restarted", *once, "restarted", *once, "failed"
    ]  # fmt: skip


def test_a_command_that_cannot_be_executed_exits(
    start_worker: Callable[..., Worker], runtime: RedisRuntime, facts: Facts
) -> None:
    start_worker()
    p = placement(agent_node(["no-such-command-anywhere"]))

    runtime.place(p)

    assert facts.until(Fact(p.instance_id, FactKind.FAILED)) == ["placed", "running", "ready", "exited", "failed"]


@pytest.mark.parametrize(
    ("command", "bundle"),
    [("python3 agent.py", None), ([], None), (["python3", "-c", "pass\0"], None), (["python3", "agent.py"], "0" * 64)],
    ids=["command-not-a-list", "empty-command", "nul-in-command", "bundle-not-stored"],
)
def test_an_instance_that_can_never_run_fails_at_once(
    start_worker: Callable[..., Worker], runtime: RedisRuntime, facts: Facts, command: Any, bundle: str | None
) -> None:
    start_worker()
    p = placement(agent_node(command), restart=RestartPolicy(attempts=5, delay_ms=50), bundle=bundle)

    runtime.place(p)

    assert facts.until(Fact(p.instance_id, FactKind.FAILED)) == ["placed", "failed"]


def test_a_stored_bundle_with_a_path_no_file_system_holds_fails_at_once(
    start_worker: Callable[..., Worker], runtime: RedisRuntime, facts: Facts, bundles: RedisBundleStore
) -> None:
    """Stored before the controller refused such paths at the door: the instance fails, its thread goes on."""
    start_worker()
    fingerprint = bundles.put({"agent.py": b"pass", "model\0.bin": b"x"})
    p = placement(agent_node(["python3", "agent.py"]), bundle=fingerprint)

    runtime.place(p)

    assert facts.until(Fact(p.instance_id, FactKind.FAILED)) == ["placed", "failed"]


def test_payloads_are_written_only_inside_the_directory(tmp_path: Path) -> None:
    materialise({"agent.py": b"1", "nested/deep/data.bin": b"\x00\x01"}, tmp_path / "ok")
    with pytest.raises(UnsafePayloadPathError):
        materialise({"../escape.py": b"x"}, tmp_path / "bad")

    assert (tmp_path / "ok" / "nested" / "deep" / "data.bin").read_bytes() == b"\x00\x01"
    assert not (tmp_path / "escape.py").exists()


# ---- stopping ----------------------------------------------------------------------------------

STUBBORN = """
import pathlib, signal, sys, time
marker = pathlib.Path(sys.argv[1])
signal.signal(signal.SIGTERM, lambda *_: marker.write_text("got SIGTERM"))
marker.write_text("started")
while True:
    time.sleep(1)
"""


def test_stop_sends_sigterm_then_sigkill_after_the_grace_period(
    start_worker: Callable[..., Worker], runtime: RedisRuntime, facts: Facts, tmp_path: Path
) -> None:
    start_worker()
    marker = tmp_path / "marker"
    p = placement(agent_node(["python3", "-c", STUBBORN, str(marker)]))
    runtime.place(p)
    facts.until(Fact(p.instance_id, FactKind.RUNNING))
    wait_for(lambda: marker.exists() and marker.read_text() == "started", what="the SIGTERM handler")
    [pid] = agent_pids(p.instance_id)
    directory = process_env(pid)["MN_BUNDLE_DIR"]

    stopped_at = time.monotonic()
    runtime.stop(p.instance_id)
    wait_for(lambda: not agent_pids(p.instance_id), what="the agent to die")

    assert marker.read_text() == "got SIGTERM"
    assert time.monotonic() - stopped_at >= GRACE_MS / 1000
    wait_for(lambda: not os.path.exists(directory), what="the working directory to be removed")


def test_an_agent_that_honours_sigterm_ends_before_the_grace_period(
    start_worker: Callable[..., Worker], runtime: RedisRuntime, facts: Facts, bundles: RedisBundleStore
) -> None:
    start_worker(grace_ms=10_000)
    p = placement(example("hello/v1.json")["nodes"][0], bundle=bundles.put(payloads("hello/v1.json")))
    runtime.place(p)
    facts.until(Fact(p.instance_id, FactKind.RUNNING))

    stopped_at = time.monotonic()
    runtime.stop(p.instance_id)
    wait_for(lambda: not agent_pids(p.instance_id), what="the agent to end")

    assert time.monotonic() - stopped_at < 5.0


def _stubborn_agent_on_n1(real_redis: redis.Redis, runtime: RedisRuntime, tmp_path: Path) -> Placement:
    """Once worker n1 has registered: an agent that ignores SIGTERM, started there."""
    wait_for(lambda: real_redis.exists(KEYS.node_heartbeat("n1")), what="the worker to register")
    marker = tmp_path / "marker"
    p = placement(agent_node(["python3", "-c", STUBBORN, str(marker)]))
    runtime.place(p)
    wait_for(lambda: marker.exists(), what="the agent to start")
    return p


def test_a_killed_worker_leaves_no_agent_behind(
    worker_process: subprocess.Popen[bytes], real_redis: redis.Redis, runtime: RedisRuntime, tmp_path: Path
) -> None:
    p = _stubborn_agent_on_n1(real_redis, runtime, tmp_path)

    worker_process.send_signal(signal.SIGKILL)
    worker_process.wait()

    wait_for(lambda: not agent_pids(p.instance_id), what="the orphaned agent to die")


def test_sigterm_stops_the_worker_with_its_agents(
    worker_process: subprocess.Popen[bytes], real_redis: redis.Redis, runtime: RedisRuntime, tmp_path: Path
) -> None:
    p = _stubborn_agent_on_n1(real_redis, runtime, tmp_path)

    worker_process.send_signal(signal.SIGTERM)

    assert worker_process.wait(DEADLINE_S) == 0
    assert not agent_pids(p.instance_id)
    assert not real_redis.exists(KEYS.node_heartbeat("n1"))  # the controller need not wait for the TTL
    assert [f.instance_id for f in runtime.expire_nodes()] == [p.instance_id]


# ---- signed orders -----------------------------------------------------------------------------

OTHER_KEY = OrderKey(b"another key of 32 characters, or more")
MARKER_AGENT = "import pathlib, sys, time; pathlib.Path(sys.argv[1]).write_text('ran'); time.sleep(60)"


def marker_placement(marker: Path) -> Placement:
    """An agent whose first act is to write `marker`: if the file is there, the placement ran."""
    return placement(agent_node(["python3", "-c", MARKER_AGENT, str(marker)]))


def forge(kind: str, p: Placement) -> str:
    """An order for node n1 that no controller with ORDER_KEY wrote."""
    text = wire.encode_placement(p)
    if kind == "unsigned":
        return text
    if kind == "another key":
        return OTHER_KEY.sign(NAMESPACE, "n1", text)
    if kind == "another node":  # a real order of the controller, replayed on n1
        return ORDER_KEY.sign(NAMESPACE, "n2", text)
    if kind == "another namespace":
        return ORDER_KEY.sign("elsewhere", "n1", text)
    assert kind == "altered"  # signed, then its command changed
    order = json.loads(ORDER_KEY.sign(NAMESPACE, "n1", wire.encode_placement(replace(p, node=agent_node(["true"])))))
    order["node"] = p.node
    return json.dumps(order)


def write_order(client: redis.Redis, instance_id: str, order: str) -> None:
    """What lua/assign.lua writes, by hand: the node's desired entry and its order on the stream."""
    client.hset(KEYS.node_desired("n1"), instance_id, order)
    client.xadd(KEYS.node_assignments("n1"), {"op": wire.PLACE, "placement": order})


@pytest.mark.parametrize("kind", ["unsigned", "another key", "another node", "another namespace", "altered"])
def test_a_placement_written_into_redis_without_the_controllers_signature_runs_nothing_and_fails(
    start_worker: Callable[..., Worker],
    real_redis: redis.Redis,
    runtime: RedisRuntime,
    facts: Facts,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    kind: str,
) -> None:
    """Written twice on the stream (two polls) and in the desired hash: refused, logged and reported once."""
    start_worker("n1")
    forged = marker_placement(tmp_path / "forged-ran")
    write_order(real_redis, forged.instance_id, forge(kind, forged))
    write_order(real_redis, forged.instance_id, forge(kind, forged))
    signed = marker_placement(tmp_path / "signed-ran")

    runtime.place(signed)  # ordered after the forgeries: once it runs, the worker has read them
    facts.until(Fact(signed.instance_id, FactKind.RUNNING))
    wait_for(lambda: (tmp_path / "signed-ran").exists(), what="the signed placement's agent to start")

    assert facts.of(forged.instance_id) == ["failed"]
    assert not (tmp_path / "forged-ran").exists()
    assert not agent_pids(forged.instance_id)
    refusals = [r.getMessage() for r in caplog.records if f"refused placement {forged.instance_id!r}" in r.getMessage()]
    assert len(refusals) == 1, refusals


def test_orders_signed_with_an_earlier_key_are_refused_by_a_worker_with_the_new_one(
    start_worker: Callable[..., Worker], real_redis: redis.Redis, facts: Facts, tmp_path: Path
) -> None:
    """A key rotation: what the node's desired hash holds from before is reported failed, for the controller to
    replace with orders under the new key."""
    real_redis.set(KEYS.node_heartbeat("n1"), "the previous worker", px=60_000)
    real_redis.sadd(KEYS.nodes, "n1")
    old = marker_placement(tmp_path / "old-ran")
    RedisRuntime(real_redis, namespace=NAMESPACE, order_key=OTHER_KEY).place(old)

    start_worker("n1")

    assert facts.until(Fact(old.instance_id, FactKind.FAILED)) == ["failed"]
    assert not (tmp_path / "old-ran").exists()
    assert not agent_pids(old.instance_id)


# ---- the controller's view ---------------------------------------------------------------------


def test_resync_reports_the_current_facts_again(
    start_worker: Callable[..., Worker], runtime: RedisRuntime, facts: Facts, bundles: RedisBundleStore
) -> None:
    start_worker()
    p = placement(example("hello/v1.json")["nodes"][0], bundle=bundles.put(payloads("hello/v1.json")))
    runtime.place(p)
    facts.until(Fact(p.instance_id, FactKind.CHECK_PASSING, "health"))
    start = len(facts.seen)

    runtime.request_resync()

    passing = Fact(p.instance_id, FactKind.CHECK_PASSING, "health")
    assert facts.until(passing, start=start) == ["running", "ready", "check_passing:health"]


def test_the_heartbeat_lives_as_long_as_the_controller_says(
    start_worker: Callable[..., Worker], real_redis: redis.Redis
) -> None:
    start_worker("n1")

    assert 0 < real_redis.pttl(KEYS.node_heartbeat("n1")) <= 2000  # the runtime fixture's node_ttl_ms
    assert real_redis.smembers(KEYS.nodes) == {"n1"}


def test_a_restarted_worker_takes_up_what_its_node_should_run(
    start_worker: Callable[..., Worker], real_redis: redis.Redis, runtime: RedisRuntime, facts: Facts
) -> None:
    real_redis.set(KEYS.node_heartbeat("n1"), "the previous worker", px=60_000)  # it died within the TTL
    real_redis.sadd(KEYS.nodes, "n1")
    p = placement(agent_node(["python3", "-c", STUBBORN, "/dev/null"]))
    runtime.place(p)

    start_worker("n1")

    assert facts.until(Fact(p.instance_id, FactKind.READY)) == ["restarted", "running", "ready"]


def test_a_worker_whose_node_was_dropped_stops_its_instances(
    start_worker: Callable[..., Worker], real_redis: redis.Redis, runtime: RedisRuntime, facts: Facts
) -> None:
    start_worker("n1")
    p = placement(agent_node(["python3", "-c", STUBBORN, "/dev/null"]))
    runtime.place(p)
    facts.until(Fact(p.instance_id, FactKind.RUNNING))

    pipe = real_redis.pipeline(transaction=True)  # what expire_nodes does once the heartbeat has expired
    pipe.delete(KEYS.node_heartbeat("n1"), KEYS.node_desired("n1"))
    pipe.srem(KEYS.nodes, "n1")
    pipe.execute()

    wait_for(lambda: not agent_pids(p.instance_id), what="the dropped instance to be stopped")
    wait_for(lambda: real_redis.sismember(KEYS.nodes, "n1"), what="the node to register again")


def test_the_core_rolls_out_the_example_bundles_on_two_workers(
    start_worker: Callable[..., Worker], runtime: RedisRuntime, bundles: RedisBundleStore
) -> None:
    """v1, then the broken v2 (fails its checks and reverts to v1's bundle as version 3), then the good v2."""
    start_worker("n1")
    start_worker("n2")
    controller = Controller(MemoryStore(), runtime, MemoryRegistry())

    def deploy(bundle: str) -> str:
        fast = {"min_healthy_ms": 200, "healthy_deadline_ms": 1500}
        record = controller.deploy(example(bundle), fast, bundle=bundles.put(payloads(bundle)), now=wall_ms())
        return drive(controller, runtime, record.deployment_id)

    assert deploy("hello/v1.json") == "successful"
    assert deploy("hello/v2-broken.json") == "failed"
    assert drive(controller, runtime, controller.get("hello").deployment_id) == "successful"
    assert greetings(controller) == ["hello from v1", "hello from v1"]
    assert controller.get("hello").stable_version == "3"
    assert deploy("hello/v2.json") == "successful"
    assert greetings(controller) == ["hello from v2", "hello from v2"]
    wait_for(lambda: len(agent_pids()) == 2, what="the replaced agents to stop")


def drive(controller: Controller, runtime: RedisRuntime, deployment_id: str) -> str:
    """What the daemon's driver does, until the deployment settles: tick, feed facts, acknowledge them."""
    deadline = time.monotonic() + DEADLINE_S
    while (status := controller.get(deployment_id).status) not in ("successful", "failed"):
        assert time.monotonic() < deadline, status
        entries = runtime.read_facts(50)
        now = time.time() * 1000
        controller.tick(now)
        for _, fact in entries:
            controller.observe(fact, now)
        runtime.ack([entry_id for entry_id, _ in entries])
    return status


def greetings(controller: Controller) -> list[str]:
    return sorted(ask(view.instance_id)["greeting"] for view in controller.instances())


def test_the_example_bundles_differ_only_in_their_command_arguments() -> None:
    v1, v2, broken = (example(name) for name in ("hello/v1.json", "hello/v2.json", "hello/v2-broken.json"))

    assert payloads("hello/v1.json") == payloads("hello/v2.json") == payloads("hello/v2-broken.json")
    commands = [m["nodes"][0]["config"].pop("command") for m in (v1, v2, broken)]
    assert v1 == v2 == broken
    assert load_manifest(v1).key == "hello"
    assert commands[2][-1] == "--failing-health" and "--failing-health" not in commands[1]


def test_a_batch_agent_that_exits_0_is_completed_and_not_restarted(
    start_worker: Callable[..., Worker], runtime: RedisRuntime, facts: Facts, real_redis: redis.Redis
) -> None:
    start_worker()
    restarts = RestartPolicy(attempts=2, delay_ms=50)
    done = replace(placement(agent_node(["python3", "-c", "raise SystemExit(0)"]), restart=restarts), batch=True)
    crashed = replace(placement(agent_node(["python3", "-c", "raise SystemExit(3)"]), restart=restarts), batch=True)

    runtime.place(done)
    assert facts.until(Fact(done.instance_id, FactKind.COMPLETED)) == ["placed", "running", "ready", "completed"]
    # done, it left its node's desired state with its fact: a restarted worker would not run it again
    assert not real_redis.hexists(KEYS.node_desired("n1"), done.instance_id)
    assert not real_redis.hexists(KEYS.assigned, done.instance_id)
    runtime.place(crashed)

    once = ["running", "ready", "exited"]
    assert facts.until(Fact(crashed.instance_id, FactKind.FAILED)) == [
        "placed", *once, "restarted", *once, "restarted", *once, "failed"
    ]  # fmt: skip
    # three starts of the crashing agent took longer than the 50 ms a restart of the completed one would have
    assert facts.of(done.instance_id) == ["placed", "running", "ready", "completed"]
