"""What a rollout's decision asks of the world: the effects the controller carries out, in order.

A rollout returns them instead of calling back (Nomad's narrow `deploymentTriggers`), so one decision is one
list that a world can apply, log or commit as a whole.
"""

from __future__ import annotations

from dataclasses import dataclass

from mn_deploy_core.ports import Role
from mn_deploy_core.timers import Kind


@dataclass(frozen=True, slots=True)
class Place:
    """Start `instance_id` of `agent_id`; a primary replaces the agent's current primary."""

    instance_id: str
    agent_id: str
    role: Role
    phase: str


@dataclass(frozen=True, slots=True)
class Stop:
    instance_id: str


@dataclass(frozen=True, slots=True)
class Promote:
    """These trial instances become primary; what they run beside stops."""

    instance_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Finish:
    """Every step is done: the version is stable."""


@dataclass(frozen=True, slots=True)
class Fail:
    """The deployment fails with this description (the controller adds the auto-revert suffix, R10)."""

    description: str


@dataclass(frozen=True, slots=True)
class Wake:
    """Tick the rollout at `at`: its progress deadline, or the end of a step's pause."""

    at: float
    kind: Kind = Kind.DEADLINE


Effect = Place | Stop | Promote | Finish | Fail | Wake
