"""R14: who a service lookup returns: primary, passing instances unless candidates or a role are asked for.

Reference: SEMANTICS.md §13, reference/mirrorneuron-deployments.md §12 and §18 scenario 11.
"""

from __future__ import annotations

from typing import Any

import pytest

from backends.memory import MemoryRegistry
from mn_deploy_core.discovery import visible
from mn_deploy_core.ports import FactKind, ServiceInstance
from tests.scripted import World, service_manifest

KEY = "agent-api"


def service(
    role: str = "primary", passing: bool = True, version: str = "1", instance_id: str = "i1"
) -> ServiceInstance:
    return ServiceInstance("api", instance_id, "worker", "job_1", f"dep_{KEY}_{version}", KEY, version, role, passing)


# role, passing, lookup options -> visible
TRUTH_TABLE: list[tuple[str, bool, dict[str, Any], bool]] = [
    ("primary", True, {}, True),
    ("", True, {}, True),
    ("canary", True, {}, False),
    ("candidate", True, {}, False),
    ("primary", False, {}, False),
    ("", False, {}, False),
    ("canary", False, {}, False),
    ("primary", False, {"passing_only": False}, True),
    ("canary", False, {"passing_only": False}, False),
    ("canary", True, {"include_candidates": True}, True),
    ("candidate", True, {"include_candidates": True}, True),
    ("primary", True, {"include_candidates": True}, True),
    ("candidate", False, {"include_candidates": True}, False),
    ("candidate", False, {"include_candidates": True, "passing_only": False}, True),
    ("canary", True, {"role": "canary"}, True),
    ("candidate", True, {"role": "canary"}, False),
    ("primary", True, {"role": "canary"}, False),
    ("candidate", True, {"role": "candidate"}, True),
    ("primary", True, {"role": "primary"}, True),
    ("canary", True, {"role": "primary"}, False),
    ("", True, {"role": "primary"}, False),
    ("canary", False, {"role": "canary"}, False),
    ("canary", False, {"role": "canary", "passing_only": False}, True),
    ("primary", True, {"role": "canary", "include_candidates": True}, False),  # an explicit role wins
]


@pytest.mark.parametrize(("role", "passing", "options", "expected"), TRUTH_TABLE)
def test_r14_visible_truth_table(role: str, passing: bool, options: dict[str, Any], expected: bool) -> None:
    assert visible(service(role, passing), **options) is expected


def test_r14_registry_hides_a_passing_canary_until_its_version_is_promoted() -> None:
    # scenario 11 on the registry port itself
    registry = MemoryRegistry()
    registry.register(service("primary", version="1", instance_id="old"))
    registry.register(service("canary", version="2", instance_id="new"))

    assert [s.instance_id for s in registry.lookup("api")] == ["old"]
    assert [s.instance_id for s in registry.lookup("api", include_candidates=True)] == ["old", "new"]
    assert [s.instance_id for s in registry.lookup("api", role="canary")] == ["new"]

    registry.promote(KEY, "2")

    assert [(s.instance_id, s.deployment_role) for s in registry.lookup("api")] == [
        ("old", "primary"),
        ("new", "primary"),
    ]
    assert registry.lookup("api", role="canary") == []


def test_r14_scenario_11_canary_v2_hidden_then_primary_after_promote() -> None:
    world = World()
    world.deploy(service_manifest())
    world.converge()
    dep = world.deploy(service_manifest("agent:2", update={"strategy": "canary"})).deployment_id
    world.converge()
    (canary,) = world.instances_of(dep)

    assert canary.instance_id not in {s.instance_id for s in world.registry.lookup("api")}
    shown = {s.instance_id: s for s in world.registry.lookup("api", include_candidates=True)}
    assert shown[canary.instance_id].deployment_role == "canary"
    assert shown[canary.instance_id].passing
    assert [s.instance_id for s in world.registry.lookup("api", role="canary")] == [canary.instance_id]

    world.controller.promote(KEY, now=world.clock.now)

    found = {s.instance_id: s for s in world.registry.lookup("api")}
    assert found[canary.instance_id].deployment_role == "primary"
    assert found[canary.instance_id].deployment_version == "2"
    assert world.registry.lookup("api", role="canary") == []


def test_r14_services_carry_the_four_deployment_fields() -> None:
    world = World()
    record = world.deploy(service_manifest(count=1))
    world.converge()

    (found,) = world.registry.lookup("api")
    assert (found.deployment_id, found.deployment_key, found.deployment_version, found.deployment_role) == (
        record.deployment_id,
        KEY,
        "1",
        "primary",
    )
    assert (found.agent_id, found.job_id) == ("worker", record.current_job_id)


def test_r14_a_placed_instance_is_not_returned_until_healthy() -> None:
    world = World()
    world.deploy(service_manifest(count=1))
    assert world.registry.lookup("api") == []
    world.bring_up()
    world.advance(999)
    assert world.registry.lookup("api") == []

    world.advance(1000)

    assert len(world.registry.lookup("api")) == 1


def test_r14_a_failing_primary_is_not_returned_by_a_normal_lookup() -> None:
    world = World()
    world.deploy(service_manifest(count=2))
    world.converge()
    failing, serving = world.runtime.live
    check = world.runtime.placements[failing].checks[0]

    world.report(failing, FactKind.CHECK_FAILING, check)

    assert [s.instance_id for s in world.registry.lookup("api")] == [serving]
    everything = world.registry.lookup("api", passing_only=False)
    assert {(s.instance_id, s.passing) for s in everything} == {(failing, False), (serving, True)}

    world.report(failing, FactKind.CHECK_PASSING, check)

    assert sorted(s.instance_id for s in world.registry.lookup("api")) == sorted([failing, serving])


def test_r14_stopped_instances_leave_discovery() -> None:
    world = World()
    world.deploy(service_manifest())
    world.converge()
    v1 = set(world.runtime.live)

    world.deploy(service_manifest("agent:2"))
    world.converge()

    everything = {s.instance_id for s in world.registry.lookup("api", include_candidates=True, passing_only=False)}
    assert everything.isdisjoint(v1)
    assert len(everything) == 3
