"""One planner per strategy (R5-R7): which agents a deployment places, in which steps, in which role.

A deployment is a sequence of steps. A step places its agents in one role, at most `budget` in flight, and is
done when every agent placed so far has a healthy new instance. A *trial* step runs its instances beside what
serves (canaries, or a whole job of candidates); when it is done they are promoted. A done step then waits
for an operator's promote when it is `manual`, or for `pause_ms`, before the next one starts; the last
step's end is the deployment's success. Routing picks a planner; the rollout (rollout.py) runs any plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from mn_deploy_core.ports import Role

if TYPE_CHECKING:
    from mn_deploy_core.policy import UpdatePolicy

UNLIMITED = 0
"""A budget without limit (also what `max_parallel: 0` means)."""


@dataclass(frozen=True, slots=True)
class Step:
    """Agents placed together in one role; `phase` is what the runtime is told the placement is for."""

    agents: tuple[str, ...]
    role: Role
    phase: str
    budget: int = UNLIMITED
    manual: bool = False
    pause_ms: int = 0

    @property
    def trial(self) -> bool:
        """Its instances run beside what serves until they are promoted."""
        return self.role is not Role.PRIMARY


class Planner(Protocol):
    """What makes a strategy: its steps, how much trial it insists on, and how a revert to it runs."""

    @property
    def name(self) -> str: ...

    @property
    def mode(self) -> str:
        """How it places, as records say: `initial`, `agent_level` or `blue_green`."""
        ...

    @property
    def whole_job(self) -> bool:
        """It starts a new job beside the old one rather than updating agents in place."""
        ...

    @property
    def least_canaries(self) -> int:
        """Canaries it runs even when the policy asks for none."""
        ...

    @property
    def revert_as(self) -> str:
        """The strategy an auto-revert to a proven version uses (R10: no canaries, no promotion)."""
        ...

    def steps(self, policy: UpdatePolicy, agents: tuple[str, ...]) -> tuple[Step, ...]: ...

    def problems(self, policy: UpdatePolicy) -> list[str]:
        """Rules of this strategy across policy fields, checked on the merged policy (R2)."""
        ...


def canary_count(policy_canary: int, least: int, changed: int) -> int:
    """R3: min(canary, n) when canary > 0, else the strategy's least number (0 or 1), never more than n."""
    return min(policy_canary if policy_canary > 0 else least, changed)


@dataclass(frozen=True, slots=True)
class Initial:
    """A key's first deployment: every agent at once, as primary."""

    name: str = "initial"
    mode: str = "initial"
    whole_job: bool = True
    least_canaries: int = 0
    revert_as: str = "rolling"

    def steps(self, policy: UpdatePolicy, agents: tuple[str, ...]) -> tuple[Step, ...]:
        return (Step(agents, Role.PRIMARY, "initial"),)

    def problems(self, policy: UpdatePolicy) -> list[str]:
        return []


@dataclass(frozen=True, slots=True)
class AgentLevel:
    """Rolling and canary (R5, R6): canaries beside the old instances, then the rest replaced `max_parallel`
    at a time. The canary strategy runs at least one canary."""

    name: str
    least_canaries: int
    mode: str = "agent_level"
    whole_job: bool = False
    revert_as: str = "rolling"

    def steps(self, policy: UpdatePolicy, agents: tuple[str, ...]) -> tuple[Step, ...]:
        canaries = canary_count(policy.canary, self.least_canaries, len(agents))
        rolling = Step(agents[canaries:], Role.PRIMARY, "rolling", policy.max_parallel)
        if not canaries:
            return (rolling,)
        trial = Step(agents[:canaries], Role.CANARY, "canary", manual=not policy.auto_promote)
        return (trial, rolling)

    def problems(self, policy: UpdatePolicy) -> list[str]:
        if self.least_canaries and policy.auto_promote and policy.canary <= 0:
            return [f"policies.update.auto_promote requires canary > 0 for {self.name} deployments"]
        return []


@dataclass(frozen=True, slots=True)
class BlueGreen:
    """R7: a whole new job of candidates beside the old one; promoted at once, or by an operator when the
    requested strategy asks for a canary and not for auto_promote."""

    name: str = "blue-green"
    mode: str = "blue_green"
    whole_job: bool = True
    least_canaries: int = 0
    revert_as: str = "blue-green"

    def steps(self, policy: UpdatePolicy, agents: tuple[str, ...]) -> tuple[Step, ...]:
        least = planner(policy.strategy).least_canaries
        manual = canary_count(policy.canary, least, 1) > 0 and not policy.auto_promote
        return (Step(agents, Role.CANDIDATE, "blue_green", manual=manual),)

    def problems(self, policy: UpdatePolicy) -> list[str]:
        return []


@dataclass(frozen=True, slots=True)
class Progressive:
    """`policies.update.steps`: canaries first, then the new version grown to each step's share of the changed
    agents (rounded up; the canaries count), `max_parallel` at a time. Each step waits its `pause_ms`, or for
    a promote when it has none (not the last), before the next."""

    name: str = "progressive"
    mode: str = "agent_level"
    whole_job: bool = False
    least_canaries: int = 1
    revert_as: str = "rolling"

    def steps(self, policy: UpdatePolicy, agents: tuple[str, ...]) -> tuple[Step, ...]:
        planned: list[Step] = []
        placed = 0
        for index, spec in enumerate(policy.steps):
            last = index == len(policy.steps) - 1
            manual, pause_ms = spec.pause_ms is None and not last, spec.pause_ms or 0
            if spec.canary:
                placed = min(spec.canary, len(agents))
                planned.append(Step(agents[:placed], Role.CANARY, "canary", manual=manual, pause_ms=pause_ms))
                continue
            upto = len(agents) if last else max(placed, -(-spec.percent * len(agents) // 100))
            rolling = agents[placed:upto]
            planned.append(Step(rolling, Role.PRIMARY, "rolling", policy.max_parallel, manual, pause_ms))
            placed = upto
        return tuple(planned)

    def problems(self, policy: UpdatePolicy) -> list[str]:
        if not policy.steps:
            return ["policies.update.steps is required for progressive deployments"]
        if policy.steps[-1].percent != 100:
            return ["policies.update.steps must end with a step of percent 100"]
        return []


INITIAL = Initial()
BLUE_GREEN = BlueGreen()
PLANNERS: Mapping[str, Planner] = {
    "rolling": AgentLevel("rolling", least_canaries=0),
    "canary": AgentLevel("canary", least_canaries=1),
    BLUE_GREEN.name: BLUE_GREEN,
    "progressive": Progressive(),
}
"""The strategies a manifest may name, by name: policy validation and the CLI's choices read this."""
STRATEGIES = tuple(PLANNERS)


def planner(strategy: str) -> Planner:
    """The planner of a strategy a normalized policy names."""
    return PLANNERS[strategy]


def planner_of(mode: str, strategy: str) -> Planner:
    """The planner a stored deployment ran with: by its mode, then (agent level) by its strategy."""
    whole_jobs: Mapping[str, Planner] = {INITIAL.mode: INITIAL, BLUE_GREEN.mode: BLUE_GREEN}
    return whole_jobs.get(mode) or PLANNERS[strategy]
