"""A controller taking over from a partial store repairs what it finds, says so, and leads (takeover.py):
orphan instances are stopped and their records removed, a deployment without its version fails, a dangling
current pointer falls back to the key's newest deployment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from backends.memory import MemoryStore
from mn_deploy_core.records import DeploymentRecord, Event, VersionRecord
from mn_deploy_core.status import FAILED_VERSION_MISSING
from tests.scripted import World, service_manifest


class Crash(Exception):
    """The controller died inside a commit."""


class PartialStore(MemoryStore):
    """A memory store left partial: a commit can die before its version or deployment writes (`write_in_order`
    writes instances first), reads can lose a version, and a key's current pointer can name a deployment that
    is not stored."""

    def __init__(self) -> None:
        super().__init__()
        self.crash_before: str | None = None
        self.lost_versions: set[tuple[str, str]] = set()
        self.pointers: dict[str, str] = {}

    def save_version(self, record: VersionRecord) -> None:
        if self.crash_before == "version":
            raise Crash
        super().save_version(record)

    def save_deployment(self, record: DeploymentRecord, new_events: Sequence[Event]) -> int:
        if self.crash_before == "deployment":
            raise Crash
        return super().save_deployment(record, new_events)

    def load_version(self, key: str, version: str) -> VersionRecord | None:
        return None if (key, version) in self.lost_versions else super().load_version(key, version)

    def list_versions(self, key: str) -> list[VersionRecord]:
        return [v for v in super().list_versions(key) if (key, v.version) not in self.lost_versions]

    def current_deployment_id(self, key: str) -> str | None:
        return self.pointers.get(key) or super().current_deployment_id(key)


def _rolling(store: PartialStore) -> tuple[World, str]:
    """agent-api rolls from version 1 to 2 one agent at a time: worker-0 healthy, worker-1 placed."""
    world = World(store)
    world.deploy(service_manifest("agent:1"))
    world.converge()
    world.clock.now = 10_000
    rolling = world.deploy(service_manifest("agent:2", update={"max_parallel": 1}))
    world.bring_up()
    world.advance(world.clock.now + 1000)
    return world, rolling.deployment_id


def _of(world: World, deployment_id: str) -> list[str]:
    """The instances one deployment placed that still run, in placement order."""
    return [i for i in world.runtime.live if i.startswith(f"{deployment_id}.")]


def _stored(world: World) -> set[str]:
    return {r.instance_id for r in world.store.list_instances()}


@pytest.mark.parametrize("crash_before", ["version", "deployment"])
def test_restore_stops_instances_whose_deployment_was_never_saved(crash_before: str) -> None:
    store = PartialStore()
    world, rolling = _rolling(store)
    store.crash_before = crash_before
    with pytest.raises(Crash):
        world.deploy(service_manifest("other:1", key="other"))
    store.crash_before = None
    orphans = [i for i in world.runtime.live if i.startswith("dep_other_")]
    assert len(orphans) == 3 and set(orphans) <= _stored(world)
    lost = orphans[0].split(".")[0]

    repairs = world.restart_controller()

    assert repairs == [f"stopped instance {i} of other: its deployment {lost} is not in the store" for i in orphans]
    assert set(orphans) <= set(world.runtime.stopped)
    assert not set(orphans) & _stored(world)
    assert not {s.instance_id for s in world.registry.lookup("api", include_candidates=True, passing_only=False)} & set(
        orphans
    )
    world.converge()
    assert world.record(rolling).status == "successful"
    assert len(_of(world, rolling)) == 3
    assert world.restart_controller() == []


def test_restore_fails_an_active_deployment_whose_version_is_missing_and_stops_its_instances() -> None:
    store = PartialStore()
    world, rolling = _rolling(store)
    before = world.record(rolling)
    placed = _of(world, rolling)
    assert len(placed) == 2
    store.lost_versions.add(("agent-api", "2"))

    repairs = world.restart_controller()

    missing = "its version 2 is not in the store or does not load"
    assert repairs == [
        *(f"stopped instance {i} of agent-api: {missing}" for i in placed),
        f"failed deployment {rolling} of agent-api: {missing}",
    ]
    record = world.record(rolling)
    assert (record.status, record.description) == ("failed", FAILED_VERSION_MISSING)
    assert record.revision == before.revision + 1, "committed through the normal record path"
    failed = world.store.deployment_events(rolling)[-1]
    assert (failed.type, failed.fields) == ("deployment_failed", {"reason": missing})
    assert set(placed) <= set(world.runtime.stopped)
    assert not set(placed) & _stored(world)
    assert world.restart_controller() == []

    update = world.deploy(service_manifest("agent:3"))
    world.converge()
    assert world.record(update.deployment_id).status == "successful"
    assert world.runtime.live == _of(world, update.deployment_id)
    assert len(world.runtime.live) == 3


def test_restore_stops_an_instance_whose_agent_its_version_does_not_have() -> None:
    world = World.settled(service_manifest("agent:1"))
    kept = world.store.list_instances()[0]
    ghost = replace(kept, instance_id=f"{kept.deployment_id}.ghost.0", agent_id="ghost")
    world.store.save_instances([ghost], [])

    repairs = world.restart_controller()

    assert repairs == [f"stopped instance {ghost.instance_id} of agent-api: version 1 has no agent ghost"]
    assert world.runtime.stopped == [ghost.instance_id]
    assert ghost.instance_id not in _stored(world)
    last = next(r for r in world.store.instance_lives() if r.instance_id == ghost.instance_id)
    assert (last.agent_id, last.stopped_ms) == ("ghost", world.clock.now)
    assert len(world.registry.lookup("api")) == 3, "the adopted instances still serve"


def test_restore_takes_the_current_job_from_the_newest_deployment_when_the_pointer_names_none_stored() -> None:
    store = PartialStore()
    world, rolling = _rolling(store)
    store.pointers["agent-api"] = "dep_agent-api_9"

    repairs = world.restart_controller()

    assert repairs == [
        f"key agent-api: its current deployment dep_agent-api_9 is not in the store; "
        f"its current job is taken from {rolling}, its newest"
    ]
    world.converge()
    assert world.record(rolling).status == "successful"
    assert world.runtime.live == _of(world, rolling), "each new primary replaced the old one"


def test_restore_stops_instances_whose_stored_manifest_no_longer_loads() -> None:
    """A version stored before a validation rule was added, or damaged, is as good as missing: its instances are
    stopped and its active deployment fails; the controller leads all the same."""
    store = PartialStore()
    world, rolling = _rolling(store)
    placed = _of(world, rolling)
    damaged = store.load_version("agent-api", "2")
    assert damaged is not None
    store.save_version(replace(damaged, manifest={**damaged.manifest, "nodes": "not a list"}))

    repairs = world.restart_controller()

    missing = "its version 2 is not in the store or does not load"
    assert repairs == [
        *(f"stopped instance {i} of agent-api: {missing}" for i in placed),
        f"failed deployment {rolling} of agent-api: {missing}",
    ]
    assert world.record(rolling).status == "failed"
