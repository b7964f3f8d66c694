"""How sweeps scale with workers. Run: `.venv/bin/python bench/sweep_scale.py [--runs R] [--agents N] [--repeat K]`.

Runs per second of a sweep of a canary scenario (examples/scenarios/canary-auto-promote.json with N agents,
default 50) on a process pool of 1 worker and of 2, measured in one run of this script, and their ratio;
goal: 2 workers >= 1.7x one. The time covers what a user waits for: starting the pool, every run, and
collecting the rows. Both sweeps must give the same rows. The two are measured K times, alternately, and
the best of each is kept, so a burst of other work on the machine does not decide the ratio; the load
average is printed because on a busy 2-core machine two workers cannot have two cores to themselves.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from sim import SweepResult, load_sweep, run_sweep

SCENARIO = Path(__file__).resolve().parents[1] / "examples" / "scenarios" / "canary-auto-promote.json"
GOAL = 1.7


def timed(agents: int, runs: int, workers: int) -> tuple[float, SweepResult]:
    document = {
        "scenario": str(SCENARIO),
        "runs": runs,
        "seed": 1,
        "grid": {"manifests.v1.nodes.0.count": [agents], "manifests.v2.nodes.0.count": [agents]},
    }
    sweep = load_sweep(document, name=f"canary-{agents}")
    started = time.perf_counter()
    result = run_sweep(sweep, workers=workers)
    return runs / (time.perf_counter() - started), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    load = os.getloadavg()[0]
    best: dict[int, float] = {1: 0.0, 2: 0.0}
    rows: dict[int, SweepResult] = {}
    for _ in range(args.repeat):
        for workers in best:
            speed, rows[workers] = timed(args.agents, args.runs, workers)
            best[workers] = max(best[workers], speed)
    assert rows[1].rows == rows[2].rows, "rows differ between 1 and 2 workers"
    outcomes = sorted({row["outcome"] for row in rows[1].rows})
    one, two = best[1], best[2]
    ratio = two / one

    print(f"sweep_scale: {args.runs} runs of a {args.agents}-agent canary rollout (outcomes: {', '.join(outcomes)})")
    print(f"  best of {args.repeat}; load average before: {load:.2f} on {os.cpu_count()} cores")
    print(f"  1 worker   {one:8.1f} runs/s")
    print(f"  2 workers  {two:8.1f} runs/s")
    verdict = "meets the goal" if ratio >= GOAL else "MISSES the goal"
    print(f"  ratio      {ratio:8.2f} x   goal >= {GOAL}x: {verdict}")


if __name__ == "__main__":
    main()
