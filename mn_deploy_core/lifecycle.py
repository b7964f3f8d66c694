"""An instance's lifecycle as both its live form (`fleet.Instance`) and its stored form (`records.InstanceRecord`)
read it, by the same names: whoever reads only the lifecycle (a simulation's result) takes either."""

from __future__ import annotations

from typing import Protocol

Interval = tuple[float, float | None]
"""(start, end) in ms; `end` None while it lasts."""


def life_outcome(
    healthy_ms: float | None, unhealthy_ms: float | None, completed_ms: float | None, stopped_ms: float | None
) -> str:
    """An instance's last state: a proven failure outranks how it ended; then completed, stopped, its verdict."""
    if unhealthy_ms is not None:
        return "unhealthy"
    if completed_ms is not None:
        return "completed"
    if stopped_ms is not None:
        return "stopped"
    return "running" if healthy_ms is None else "healthy"


class Life(Protocol):
    """An instance's lifecycle by the record's names: a record, or a live instance whose record is not made yet
    (`InstanceRecord` and `fleet.Instance` both are one), so a reader of the lifecycle alone needs no record."""

    @property
    def instance_id(self) -> str: ...
    @property
    def agent_id(self) -> str: ...
    @property
    def job_id(self) -> str: ...
    @property
    def deployment_key(self) -> str: ...
    @property
    def deployment_id(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def placed_ms(self) -> float: ...
    @property
    def healthy(self) -> bool | None: ...
    @property
    def running_ms(self) -> float | None: ...
    @property
    def healthy_ms(self) -> float | None: ...
    @property
    def unhealthy_ms(self) -> float | None: ...
    @property
    def restart_ms(self) -> tuple[float, ...]: ...
    @property
    def passing_again_ms(self) -> tuple[float | None, ...]: ...
    @property
    def promoted_ms(self) -> float | None: ...
    @property
    def completed_ms(self) -> float | None: ...
    @property
    def stopped_ms(self) -> float | None: ...
    @property
    def discoverable_ms(self) -> tuple[Interval, ...]: ...
    @property
    def outcome(self) -> str: ...
