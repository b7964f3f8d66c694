"""Independent random streams of one run, one per purpose.

Latency and failure draws come from separate children of the run's `SeedSequence`, addressed by a fixed
spawn key, so a policy change that alters how many latencies are drawn does not shift which instances
fail (common random numbers across what-if variants).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LATENCY = 0
FAILURE = 1


@dataclass(frozen=True, slots=True)
class RandomStreams:
    latency: np.random.Generator
    failure: np.random.Generator

    @classmethod
    def from_seed(cls, seed: int) -> RandomStreams:
        def stream(purpose: int) -> np.random.Generator:
            return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(purpose,)))

        return cls(latency=stream(LATENCY), failure=stream(FAILURE))
