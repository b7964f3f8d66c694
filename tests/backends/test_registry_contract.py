"""The Registry contract and the discovery rule (R14), the same on every backend."""

from __future__ import annotations

from mn_deploy_core.ports import Registry, Role, ServiceInstance
from tests.backends.samples import service


def ids(found: list[ServiceInstance]) -> list[str]:
    return sorted(s.instance_id for s in found)


def test_a_passing_primary_is_found_with_every_field(registry: Registry) -> None:
    primary = service("w#1")
    registry.register(primary)
    assert registry.lookup("api") == [primary]
    assert registry.lookup("other") == []


def test_failing_instances_are_hidden_unless_asked_for(registry: Registry) -> None:
    registry.register(service("w#1", passing=False))
    assert registry.lookup("api") == []
    assert ids(registry.lookup("api", passing_only=False)) == ["w#1"]
    registry.set_passing("w#1", True)
    assert ids(registry.lookup("api")) == ["w#1"]
    registry.set_passing("w#1", False)
    assert registry.lookup("api") == []


def test_an_empty_role_counts_as_primary(registry: Registry) -> None:
    registry.register(service("w#1", role=""))
    assert ids(registry.lookup("api")) == ["w#1"]


def test_a_canary_is_hidden_until_promoted(registry: Registry) -> None:
    """Reference §18 #11."""
    registry.register(service("w#1", version="1"))
    registry.register(service("w#2", version="2", role=Role.CANARY))
    assert ids(registry.lookup("api")) == ["w#1"]
    assert ids(registry.lookup("api", include_candidates=True)) == ["w#1", "w#2"]
    assert ids(registry.lookup("api", role=Role.CANARY)) == ["w#2"]
    registry.promote("agent-api", "2")
    found = registry.lookup("api")
    assert ids(found) == ["w#1", "w#2"]
    assert {s.instance_id: s.deployment_role for s in found} == {"w#1": "primary", "w#2": "primary"}
    assert registry.lookup("api", role=Role.CANARY) == []


def test_promotion_touches_only_that_key_and_version(registry: Registry) -> None:
    registry.register(service("w#1", version="2", role=Role.CANDIDATE))
    registry.register(service("w#2", version="3", role=Role.CANDIDATE))
    registry.register(service("x#1", version="2", role=Role.CANDIDATE, key="other"))
    registry.promote("agent-api", "2")
    assert ids(registry.lookup("api")) == ["w#1"]
    assert ids(registry.lookup("api", role=Role.CANDIDATE)) == ["w#2", "x#1"]


def test_promotion_keeps_the_passing_status(registry: Registry) -> None:
    registry.register(service("w#1", version="2", role=Role.CANARY, passing=False))
    registry.promote("agent-api", "2")
    assert registry.lookup("api") == []
    assert [s.deployment_role for s in registry.lookup("api", passing_only=False)] == ["primary"]


def test_an_instance_serves_several_names_and_leaves_them_all(registry: Registry) -> None:
    registry.register(service("w#1", name="api"))
    registry.register(service("w#1", name="metrics"))
    assert ids(registry.lookup("api")) == ["w#1"]
    assert ids(registry.lookup("metrics")) == ["w#1"]
    registry.deregister("w#1")
    assert registry.lookup("api") == []
    assert registry.lookup("metrics") == []


def test_registering_again_replaces_the_service(registry: Registry) -> None:
    registry.register(service("w#1", passing=False))
    registry.register(service("w#1", passing=True))
    assert registry.lookup("api") == [service("w#1", passing=True)]


def test_unknown_instances_are_ignored(registry: Registry) -> None:
    registry.deregister("nobody")
    registry.set_passing("nobody", True)
    registry.promote("agent-api", "1")
    assert registry.lookup("api", passing_only=False) == []


def test_lookup_returns_exactly_what_the_rule_lets_through(registry: Registry) -> None:
    kinds = [(role, passing) for role in (Role.PRIMARY, Role.CANARY, Role.CANDIDATE, "") for passing in (True, False)]
    everyone = [service(f"w#{i}", role=role, passing=passing) for i, (role, passing) in enumerate(kinds)]
    for s in everyone:
        registry.register(s)
    assert ids(registry.lookup("api")) == ids(
        [s for s in everyone if s.passing and s.deployment_role in ("", Role.PRIMARY)]
    )
    assert ids(registry.lookup("api", include_candidates=True, passing_only=False)) == ids(everyone)
    assert ids(registry.lookup("api", role=Role.CANDIDATE)) == ids(
        [s for s in everyone if s.passing and s.deployment_role == Role.CANDIDATE]
    )
