"""The live world end to end, on one machine: redis-server, the controller daemon and 2 workers as processes.

Three figures:
- a 20-agent rolling update of the example agent (max_parallel 5, min_healthy_ms 300): its duration divided by
  the ideal, batches x (start + min_healthy), where start is the median time from an agent's placement to the
  start of its min_healthy window (its process up and its check passing), taken from the deployment's events
  (goal <= 1.5);
- the controller's CPU time over 10 idle seconds afterwards, the agents still running (goal < 1%);
- GetDeployment p50 through the official SDK on loopback, for a key with 100 versions (goal < 2 ms): the reply
  holds the record and version summaries, not every version's manifest.

    python bench/live_rollout.py [--agents 20] [--max-parallel 5] [--min-healthy-ms 300] [--idle-s 10]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from backends.live.devstack import DevStack
from backends.loopback import free_port
from mn_deploy.bundle_reader import read_bundle
from mn_deploy.live_cli import mn_deploy_command

BUNDLES = Path(__file__).resolve().parents[1] / "examples" / "bundles"
KEY = "hello"


def bundle(name: str, agents: int) -> tuple[str, dict[str, bytes]]:
    """The example bundle with its node counted `agents` times."""
    read = read_bundle(BUNDLES / name)
    manifest = json.loads(read.manifest_json)
    manifest["nodes"][0]["count"] = agents
    return json.dumps(manifest), read.payloads


def settled(client: Any, timeout_s: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        record: dict[str, Any] = json.loads(client.get_deployment(KEY))
        if record["status"] not in ("running", "paused"):
            return record
        if time.monotonic() > deadline:
            raise SystemExit(f"the deployment did not settle in {timeout_s:g} s: {record['description']}")
        time.sleep(0.01)


def rolling(client: Any, agents: int, max_parallel: int, min_healthy_ms: int) -> tuple[float, float, float]:
    """(duration s, median start s, ideal s) of a rolling update from v1 to v2."""
    policy = {"min_healthy_ms": min_healthy_ms, "max_parallel": max_parallel}
    client.deploy_job(*bundle("hello/v1.json", agents), update_policy=policy)
    if settled(client)["status"] != "successful":
        raise SystemExit("v1 did not deploy")
    client.deploy_job(*bundle("hello/v2.json", agents), update_policy=policy)
    record = settled(client)
    if record["status"] != "successful":
        raise SystemExit(f"v2 did not deploy: {record['description']}")
    events = record["events"]
    placed = {e["instance_id"]: e["t_ms"] for e in events if e["type"] == "deployment_instance_placed"}
    healthy = {e["instance_id"]: e["t_ms"] for e in events if e["type"] == "deployment_instance_healthy"}
    starts = [(healthy[i] - placed[i] - min_healthy_ms) / 1000 for i in placed]
    began = min(e["t_ms"] for e in events)
    ended = max(e["t_ms"] for e in events if e["type"] == "deployment_successful")
    start = statistics.median(starts)
    ideal = math.ceil(agents / max_parallel) * (start + min_healthy_ms / 1000)
    return (ended - began) / 1000, start, ideal


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
            mn_deploy_command(), workers=2, grpc_address=f"127.0.0.1:{free_port()}", workdir=Path(directory), logs=True
        )
        try:
            stack.start()
            client = Client(target=stack.grpc_address, timeout=30)
            took, start, ideal = rolling(client, args.agents, args.max_parallel, args.min_healthy_ms)
            cpu = idle_cpu_percent(stack.controllers[0].pid, args.idle_s)
            p50 = get_p50_ms(client, args.versions, args.agents, args.reads)
            client.channel.close()
        finally:
            stack.stop()
    batches = math.ceil(args.agents / args.max_parallel)
    print(f"rolling update of {args.agents} agents, max_parallel {args.max_parallel}, 2 workers:")
    print(
        f"  took {took:.2f} s; ideal {batches} x ({start:.2f} s start + {args.min_healthy_ms / 1000:.2f} s) "
        f"= {ideal:.2f} s; ratio {took / ideal:.2f} (goal <= 1.5)"
    )
    print(f"controller CPU over {args.idle_s:g} idle seconds: {cpu:.2f}% (goal < 1%)")
    print(f"GetDeployment p50 with {args.versions} versions: {p50:.2f} ms over {args.reads} calls (goal < 2 ms)")


if __name__ == "__main__":
    main()
