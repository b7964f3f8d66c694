"""Cost per fact of a rolling deployment through the core, at N = 100 and N = 10,000, in one run.

The core must do O(1) work per fact (no scan over all instances), so the two costs should be close:
goal ratio <= 1.5, and the 10,000-agent rollout in under 1 s of CPU.

    python bench/core_scale.py [--max-parallel 100]
"""

from __future__ import annotations

import argparse
import time
from collections import deque
from typing import Any

from backends.memory import MemoryRegistry, MemoryStore
from mn_deploy_core.controller import Controller
from mn_deploy_core.ports import Fact, FactKind, Placement


class QueueRuntime:
    """Remembers new placements so the driver can answer each with facts; stops are dropped."""

    def __init__(self) -> None:
        self.placed: deque[Placement] = deque()

    def place(self, placement: Placement) -> None:
        self.placed.append(placement)

    def stop(self, instance_id: str) -> None:
        pass


def manifest(image: str, agents: int, max_parallel: int) -> dict[str, Any]:
    services = [{"name": "api", "checks": [{"type": "http", "path": "/health"}]}]
    node = {"node_id": "worker", "agent_type": "executor", "count": agents, "config": {"image": image}}
    return {
        "job_type": "service",
        "deployment": {"key": "bench"},
        "nodes": [{**node, "services": services}],
        "policies": {"update": {"max_parallel": max_parallel, "min_healthy_ms": 1000}},
    }


def run(controller: Controller, runtime: QueueRuntime, clock: list[float]) -> int:
    """Answer every placement with running, ready and passing checks; tick at each wakeup. Returns facts fed."""
    facts = 0
    while True:
        while runtime.placed:
            placement = runtime.placed.popleft()
            now = clock[0]
            controller.observe(Fact(placement.instance_id, FactKind.RUNNING), now)
            controller.observe(Fact(placement.instance_id, FactKind.READY), now)
            for check in placement.checks:
                controller.observe(Fact(placement.instance_id, FactKind.CHECK_PASSING, check), now)
            facts += 2 + len(placement.checks)
        wake = controller.next_wakeup()
        if wake is None:
            return facts
        clock[0] = wake
        controller.tick(wake)
        facts += 1


def measure(agents: int, max_parallel: int, repeats: int) -> tuple[float, int, str]:
    """CPU seconds and facts of rolling v1 -> v2 over `agents` agents, summed over `repeats` worlds.

    The initial v1 deployment is not timed. Small worlds repeat so both sizes time a similar amount of work.
    """
    elapsed, facts, status = 0.0, 0, ""
    for _ in range(repeats):
        clock = [0.0]
        runtime = QueueRuntime()
        controller = Controller(MemoryStore(), runtime, MemoryRegistry())
        controller.deploy(manifest("agent:1", agents, max_parallel), now=clock[0])
        run(controller, runtime, clock)
        started = time.process_time()
        controller.deploy(manifest("agent:2", agents, max_parallel), now=clock[0])
        facts += run(controller, runtime, clock)
        elapsed += time.process_time() - started
        status = controller.get("bench").status
    return elapsed, facts, status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-parallel", type=int, default=100)
    args = parser.parse_args()
    results = {n: measure(n, args.max_parallel, repeats) for n, repeats in ((100, 100), (10_000, 1))}
    for n, (cpu, facts, status) in results.items():
        print(f"N={n:>6}: {status}, {facts} facts, {cpu:.3f} s CPU, {cpu / facts * 1e6:.2f} us/fact")
    small, large = (results[n][0] / results[n][1] for n in (100, 10_000))
    print(f"cost per fact ratio N=10000 / N=100: {large / small:.2f} (goal <= 1.5)")
    print(f"10,000-agent rollout CPU: {results[10_000][0]:.3f} s (goal < 1 s)")


if __name__ == "__main__":
    main()
