"""Who a service lookup returns (R14): the rule every Registry applies.

A normal lookup sees primary, passing instances only, so canaries and blue-green candidates stay hidden
until promotion flips them to primary.
"""

from __future__ import annotations

from mn_deploy_core.ports import Role, ServiceInstance


def visible(
    service: ServiceInstance,
    *,
    include_candidates: bool = False,
    role: str | None = None,
    passing_only: bool = True,
) -> bool:
    """Whether `service` belongs in the answer to a lookup with these options."""
    if passing_only and not service.passing:
        return False
    if role:
        return service.deployment_role == role
    return include_candidates or service.deployment_role in ("", Role.PRIMARY)
