"""How the simulator scales. Run: `.venv/bin/python bench/sim_scale.py [--agents N] [--repeat R] [--large M]`.

(a) cost per instance of a simulated rolling deployment against a bare SimPy process doing the same
    timeouts (start, ready, checks, the min_healthy window, under a max_parallel Resource); goal <= 3x.
    The controller's own share is measured too, to tell the world's overhead from the core's.
(b) wall time of a rolling deployment of N agents (default 10,000) at max_parallel 100; goal <= 2 s.
    At M agents (default 10 N, so 100,000; 0 skips it): the rolling deployment's wall time, goal < 5 s, and
    the peak RSS of the whole run (v1 then v2, scenario and result included), goal < 1 GB. Each of these runs
    once, in a fresh process of its own, so that its peak RSS is its own.
(c) simulated events (SimPy events processed) per wall-clock second.

A rolling deployment's cost is that of a run deploying v1 then v2 minus that of a run deploying only v1,
so the initial placement of N agents is not counted as rolling work. Each figure is the best of R runs, each
started on a collected heap: a finished simulation is freed by the cyclic collector, and its hundreds of
thousands of objects left for the next run to collect made a bare SimPy run measured after it 40% slower.
"""

from __future__ import annotations

import argparse
import gc
import math
import multiprocessing
import resource
import time
from collections.abc import Callable, Generator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

from sim import Simulation, load_scenario

MAX_PARALLEL = 100
GB = 1e9
MIN_HEALTHY_MS = 5000
START = {"median": 1500.0, "sigma": 0.4}
READY_MS = 200.0
CHECK_MS = 300.0
ROLL_AT_MS = 100_000
CONTROLLER_CALLS = ("deploy", "observe", "tick", "next_wakeup")


def manifest(agents: int, image: str) -> dict[str, Any]:
    node = {
        "node_id": "worker",
        "agent_type": "executor",
        "count": agents,
        "config": {"image": image},
        "services": [{"name": "api", "checks": [{"type": "http", "path": "/health"}]}],
    }
    policy = {"max_parallel": MAX_PARALLEL, "min_healthy_ms": MIN_HEALTHY_MS}
    return {"job_type": "service", "deployment": {"key": "fleet"}, "nodes": [node], "policies": {"update": policy}}


def scenario(agents: int, roll: bool) -> dict[str, Any]:
    actions: list[dict[str, Any]] = [{"at_ms": 0, "deploy": "v1"}]
    if roll:
        actions.append({"at_ms": ROLL_AT_MS, "deploy": "v2"})
    return {
        "name": f"rolling-{agents}",
        "manifests": {"v1": manifest(agents, "w:1"), "v2": manifest(agents, "w:2")},
        "behaviors": {"default": {"start_ms": {"lognormal": START}, "ready_ms": READY_MS, "check_ms": CHECK_MS}},
        "actions": actions,
    }


class Stopwatch:
    """Time spent inside the controller, counted once however its calls nest."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._depth = 0

    def wrap(self, target: object, names: tuple[str, ...]) -> None:
        for name in names:
            setattr(target, name, self._timed(getattr(target, name)))

    def _timed(self, call: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            if self._depth:
                return call(*args, **kwargs)
            self._depth += 1
            started = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started
                self._depth -= 1

        return timed


@dataclass(frozen=True)
class Measured:
    wall_s: float
    end_ms: float
    statuses: tuple[str, ...]
    controller_s: float = 0.0
    events: int = 0


def simulate(agents: int, roll: bool, *, instrumented: bool = False) -> Measured:
    """One run as `sim.run_scenario` does it (result included). Instrumented, it also times the controller's
    calls and counts SimPy steps, which costs some 5% more: the run's own cost is measured without."""
    loaded = load_scenario(scenario(agents, roll))
    gc.collect()
    started = time.perf_counter()
    simulation = Simulation(loaded, seed=1)
    stopwatch = Stopwatch()
    steps = [0]
    if instrumented:
        stopwatch.wrap(simulation.controller, CONTROLLER_CALLS)
        step = simulation.env.step

        def counted_step() -> None:
            steps[0] += 1
            step()

        simulation.env.step = counted_step  # type: ignore[method-assign]
    result = simulation.run()
    wall = time.perf_counter() - started
    statuses = tuple(d["status"] for d in result.deployments)
    return Measured(wall, result.end_ms, statuses, stopwatch.seconds, steps[0])


def _simulate_here(agents: int, roll: bool) -> tuple[Measured, float]:
    """`simulate`, scenario loading included, and this process's peak RSS in bytes (Linux counts KiB)."""
    measured = simulate(agents, roll)
    return measured, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def simulate_fresh(agents: int, roll: bool) -> tuple[Measured, float]:
    """`simulate` in a new process, so that no earlier run's heap counts in its peak RSS."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_simulate_here, agents, roll).result()


def bare(agents: int) -> float:
    """The same timeouts with nothing deciding anything: a process per agent under a Resource."""
    rng = np.random.default_rng(1)
    starts = rng.lognormal(math.log(START["median"]), START["sigma"], agents).tolist()
    gc.collect()
    started = time.perf_counter()
    env = simpy.Environment()
    budget = simpy.Resource(env, capacity=MAX_PARALLEL)

    def instance(start_ms: float) -> Generator[simpy.Event, Any, None]:
        with budget.request() as slot:
            yield slot
            yield env.timeout(start_ms)
            yield env.timeout(READY_MS)
            yield env.timeout(CHECK_MS)
            yield env.timeout(MIN_HEALTHY_MS)

    for start_ms in starts:
        env.process(instance(start_ms))
    env.run()
    return time.perf_counter() - started


def best(runs: list[Measured]) -> Measured:
    return min(runs, key=lambda m: m.wall_s)


def verdict(ok: bool) -> str:
    return "meets the goal" if ok else "MISSES the goal"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--large", type=int, default=None, help="default: 10 times --agents")
    args = parser.parse_args()
    n = args.agents
    large = 10 * n if args.large is None else args.large

    initial = best([simulate(n, roll=False) for _ in range(args.repeat)])
    both = best([simulate(n, roll=True) for _ in range(args.repeat)])
    initial_split = simulate(n, roll=False, instrumented=True)
    both_split = simulate(n, roll=True, instrumented=True)
    bare_s = min(bare(n) for _ in range(args.repeat))
    assert both.statuses == ("successful", "successful"), both.statuses

    rolling_s = both.wall_s - initial.wall_s
    split_s = both_split.wall_s - initial_split.wall_s
    controller_s = both_split.controller_s - initial_split.controller_s
    world_s = split_s - controller_s
    per_instance_us = rolling_s / n * 1e6
    bare_us = bare_s / n * 1e6
    ratio = per_instance_us / bare_us

    print(f"sim_scale: {n} agents, rolling at max_parallel {MAX_PARALLEL}, best of {args.repeat}")
    print(f"  simulated: initial deploy ends at {initial.end_ms / 1000:.1f} s, v1 -> v2 at {both.end_ms / 1000:.1f} s")
    print("(a) cost per instance of the rolling deployment")
    print(f"    simulated            {per_instance_us:8.1f} us")
    print(f"    instrumented run     {split_s / n * 1e6:8.1f} us  (controller {controller_s / n * 1e6:.1f} us,")
    print(f"                                      world + SimPy {world_s / n * 1e6:.1f} us)")
    print(f"    bare SimPy process   {bare_us:8.1f} us")
    print(f"    ratio                {ratio:8.1f} x   goal <= 3x: {verdict(ratio <= 3)}")
    print(f"    world-only ratio     {world_s / bare_s:8.1f} x   (what the simulator adds without the controller)")
    print(f"(b) wall time of the {n}-agent rolling deployment")
    print(f"    rolling              {rolling_s:8.2f} s   goal <= 2 s: {verdict(rolling_s <= 2)}")
    print(f"    whole run (v1 + v2)  {both.wall_s:8.2f} s   (controller {both_split.controller_s:.2f} s instrumented)")
    if large:
        large_initial, _ = simulate_fresh(large, roll=False)
        large_both, peak = simulate_fresh(large, roll=True)
        assert large_both.statuses == ("successful", "successful"), large_both.statuses
        large_rolling_s = large_both.wall_s - large_initial.wall_s
        print(f"    at {large} agents, each run once in a fresh process:")
        print(f"    rolling              {large_rolling_s:8.2f} s   goal < 5 s: {verdict(large_rolling_s < 5)}")
        print(f"    whole run (v1 + v2)  {large_both.wall_s:8.2f} s   peak RSS {peak / 1e6:.0f} MB")
        print(f"                                      goal < 1 GB: {verdict(peak < GB)}")
    print("(c) simulated events per second")
    events = both_split.events
    print(f"    {events} SimPy events in {both.wall_s:.2f} s = {events / both.wall_s:,.0f} events/s")


if __name__ == "__main__":
    main()
