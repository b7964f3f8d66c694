"""The live world end to end, on one machine: redis-server, the controller daemon and its workers as processes.

Figures:
- a rolling update of the example agent (default 20 agents on 2 workers, max_parallel 5, min_healthy_ms 300; at
  scale, `--agents 200 --workers 4 --max-parallel 20`): its duration divided by the ideal, batches x (start +
  min_healthy), where start is the median time from an agent's placement to the start of its min_healthy window
  (its process up and its check passing), taken from the deployment's events (goal <= 1.5); and the controller's
  CPU time during the update divided by the facts the workers reported meanwhile (the facts stream's
  `entries-added`), its cost per fact;
- the controller's CPU time over 10 idle seconds afterwards, the agents still running (goal < 1%);
- GetDeployment p50 through the official SDK on loopback, for a key with 100 versions (goal < 2 ms): the reply
  holds the record and version summaries, not every version's manifest.

    python bench/live_rollout.py [--agents 20] [--workers 2] [--max-parallel 5] [--min-healthy-ms 300] [--idle-s 10]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from backends.live.devstack import DevStack
from backends.loopback import free_port
from backends.redis import Keys, RedisStore, connect
from backends.redis.keys import namespace_from_env
from mn_deploy.bundle_reader import read_bundle
from mn_deploy.live_cli import mn_deploy_command

BUNDLES = Path(__file__).resolve().parents[1] / "examples" / "bundles"
KEY = "hello"


def bundle(name: str, agents: int) -> tuple[str, dict[str, bytes]]:
    """The example bundle with its node counted `agents` times, its agent run by this interpreter: `python3` on
    PATH may be a version manager's shim, which costs more CPU per start than the agent itself."""
    read = read_bundle(BUNDLES / name)
    manifest = json.loads(read.manifest_json)
    node = manifest["nodes"][0]
    node["count"] = agents
    node["config"]["command"] = [sys.executable, *node["config"]["command"][1:]]
    return json.dumps(manifest), read.payloads


def settled(client: Any, timeout_s: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        record: dict[str, Any] = json.loads(client.get_deployment(KEY))
        if record["status"] not in ("running", "paused"):
            return record
        if time.monotonic() > deadline:
            raise SystemExit(f"the deployment did not settle in {timeout_s:g} s: {record['description']}")
        time.sleep(0.2)  # seldom: each look costs the controller a reply, counted in its CPU per fact


class Redis:
    """What the bench reads from the stack's Redis directly: facts reported, and a deployment's whole history
    (a reply carries only the newest 100 events)."""

    def __init__(self, stack: DevStack) -> None:
        self._client = connect(stack.redis_url)
        self._store = RedisStore(self._client)
        self._facts = Keys(namespace_from_env()).facts

    def facts(self) -> int:
        """Facts the workers have reported so far: the stream's `entries-added` (trimming does not lower it)."""
        if not self._client.exists(self._facts):
            return 0
        return int(self._client.xinfo_stream(self._facts)["entries-added"])

    def events(self, deployment_id: str) -> list[dict[str, Any]]:
        return [event.to_json() for event in self._store.deployment_events(deployment_id)]


def rolling(
    client: Any, agents: int, max_parallel: int, min_healthy_ms: int, controller_pid: int, redis: Redis
) -> tuple[float, float, float, float, int]:
    """(duration s, median start s, ideal s, controller CPU µs per fact, facts) of a rolling update from v1 to v2."""
    policy = {"min_healthy_ms": min_healthy_ms, "max_parallel": max_parallel}
    client.deploy_job(*bundle("hello/v1.json", agents), update_policy=policy)
    if settled(client)["status"] != "successful":
        raise SystemExit("v1 did not deploy")
    cpu_before, facts_before = cpu_s(controller_pid), redis.facts()
    client.deploy_job(*bundle("hello/v2.json", agents), update_policy=policy)
    record = settled(client)
    reported = redis.facts() - facts_before
    per_fact_us = 1e6 * (cpu_s(controller_pid) - cpu_before) / max(reported, 1)
    if record["status"] != "successful":
        raise SystemExit(f"v2 did not deploy: {record['description']}")
    events = redis.events(record["deployment_id"])
    placed = {e["instance_id"]: e["t_ms"] for e in events if e["type"] == "deployment_instance_placed"}
    healthy = {e["instance_id"]: e["t_ms"] for e in events if e["type"] == "deployment_instance_healthy"}
    starts = [(healthy[i] - placed[i] - min_healthy_ms) / 1000 for i in placed]
    began = min(e["t_ms"] for e in events)
    ended = max(e["t_ms"] for e in events if e["type"] == "deployment_successful")
    start = statistics.median(starts)
    ideal = math.ceil(agents / max_parallel) * (start + min_healthy_ms / 1000)
    return (ended - began) / 1000, start, ideal, per_fact_us, reported


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_cpu_percent(pid: int, seconds: float) -> float:
    before, started = cpu_s(pid), time.monotonic()
    time.sleep(seconds)
    return 100.0 * (cpu_s(pid) - before) / (time.monotonic() - started)


def get_p50_ms(client: Any, versions: int, agents: int, reads: int) -> float:
    """Noop deploys (same spec) add versions without touching an agent; then time GetDeployment."""
    manifest, payloads = bundle("hello/v2.json", agents)
    while json.loads(client.get_deployment(KEY))["versions_total"] < versions:
        client.deploy_job(manifest, payloads)
    timings = []
    for _ in range(reads):
        started = time.perf_counter()
        client.get_deployment(KEY)
        timings.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-parallel", type=int, default=5)
    parser.add_argument("--min-healthy-ms", type=int, default=300)
    parser.add_argument("--idle-s", type=float, default=10.0)
    parser.add_argument("--versions", type=int, default=100)
    parser.add_argument("--reads", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        os.environ["MN_HOME"] = directory  # the SDK writes its config and log there
        from mn_sdk import Client

        stack = DevStack(
            mn_deploy_command(),
            workers=args.workers,
            grpc_address=f"127.0.0.1:{free_port()}",
            workdir=Path(directory),
            logs=True,
        )
        try:
            stack.start()
            client = Client(target=stack.grpc_address, timeout=30, auth_token=stack.token)
            controller = stack.controllers[0].pid
            took, start, ideal, per_fact_us, reported = rolling(
                client, args.agents, args.max_parallel, args.min_healthy_ms, controller, Redis(stack)
            )
            cpu = idle_cpu_percent(controller, args.idle_s)
            p50 = get_p50_ms(client, args.versions, args.agents, args.reads)
            client.channel.close()
        finally:
            stack.stop()
    batches = math.ceil(args.agents / args.max_parallel)
    print(f"rolling update of {args.agents} agents, max_parallel {args.max_parallel}, {args.workers} workers:")
    print(
        f"  took {took:.2f} s; ideal {batches} x ({start:.2f} s start + {args.min_healthy_ms / 1000:.2f} s) "
        f"= {ideal:.2f} s; ratio {took / ideal:.2f} (goal <= 1.5)"
    )
    print(f"  controller CPU during the update: {per_fact_us:.0f} µs per fact, over {reported} facts reported")
    print(f"controller CPU over {args.idle_s:g} idle seconds: {cpu:.2f}% (goal < 1%)")
    print(f"GetDeployment p50 with {args.versions} versions: {p50:.2f} ms over {args.reads} calls (goal < 2 ms)")


if __name__ == "__main__":
    main()
