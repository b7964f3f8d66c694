"""R12 and R13: statuses and descriptions; record fields, JSON, ids, versions and events.

Reference: SEMANTICS.md §11-12, reference/mirrorneuron-deployments.md §1, §4 and §18 scenario 33.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from mn_deploy_core.ports import FactKind
from mn_deploy_core.records import EVENTS_KEPT, DeploymentRecord, deployment_id, safe_key
from tests.reference import REFERENCE_FIELDS
from tests.scripted import World, service_manifest

KEY = "agent-api"

SEMANTICS_FIELDS = {
    "previous_status",
    "require_progress_by_ms",
    "counters",
    "rollback",
    "reverted_to_version",
    "canary_agent_ids",
}
COUNTERS = {"desired_total", "desired_canaries", "placed", "healthy", "unhealthy"}
ISO_MS_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def stable_world(**kwargs: Any) -> World:
    return World.settled(service_manifest(**kwargs))


# --- statuses and descriptions (R12) ----------------------------------------------------------------------------


def running(world: World) -> None:
    world.deploy(service_manifest("agent:2"))


def awaiting(world: World) -> None:
    world.deploy(service_manifest("agent:2", update={"strategy": "canary"}))
    world.converge()


def pending_auto(world: World) -> None:
    world.deploy(service_manifest("agent:2", update={"canary": 1, "auto_promote": True}))


def paused(world: World) -> None:
    world.deploy(service_manifest("agent:2"))
    world.controller.pause(KEY, now=world.clock.now)


def paused_with_reason(world: World) -> None:
    world.deploy(service_manifest("agent:2"))
    world.controller.pause(KEY, "waiting for the database migration", now=world.clock.now)


def successful(world: World) -> None:
    world.deploy(service_manifest("agent:2"))
    world.converge()


def noop(world: World) -> None:
    world.deploy(service_manifest())


def failed_unhealthy(world: World) -> None:
    world.deploy(service_manifest("agent:2", update={"progress_deadline_ms": 0}))
    world.report(world.fresh()[0], FactKind.FAILED)


def failed_deadline(world: World) -> None:
    update = {"healthy_deadline_ms": 2000, "progress_deadline_ms": 3000}
    world.deploy(service_manifest("agent:2", update=update))
    world.advance(world.clock.now + 3000)  # nothing ever reports


def failed_by_operator(world: World) -> None:
    world.deploy(service_manifest("agent:2"))
    world.controller.fail(KEY, now=world.clock.now)


def cancelled(world: World) -> None:
    world.deploy(service_manifest("agent:2"))
    world.deploy(service_manifest("agent:3"))


def version_recorded(world: World) -> None:
    world.deploy(service_manifest("agent:2", job_type="batch"))


STATUS_TABLE: list[tuple[Callable[[World], None], str, str]] = [
    (running, "running", "Deployment is running"),
    (awaiting, "awaiting_promotion", "Deployment is running but requires manual promotion"),
    (pending_auto, "running", "Deployment is running pending automatic promotion"),
    (paused, "paused", "Deployment is paused"),
    (paused_with_reason, "paused", "waiting for the database migration"),
    (successful, "successful", "Deployment completed successfully"),
    (noop, "successful", "Deployment contained no runtime changes"),
    (failed_unhealthy, "failed", "Failed due to unhealthy instances"),
    (failed_deadline, "failed", "Failed due to progress deadline"),
    (failed_by_operator, "failed", "Deployment marked as failed"),
    (cancelled, "cancelled", "Cancelled due to newer version"),
    (version_recorded, "version_recorded", "Batch version recorded as rerun"),
]


@pytest.mark.parametrize(
    ("drive", "status", "description"), STATUS_TABLE, ids=[row[0].__name__ for row in STATUS_TABLE]
)
def test_r12_status_and_description_table(drive: Callable[[World], None], status: str, description: str) -> None:
    """Each row drives version 2 of a key whose version 1 is stable."""
    world = stable_world(job_type="batch") if drive is version_recorded else stable_world()

    drive(world)

    (record,) = [r for r in world.controller.list(KEY) if r.target_version == "2"]
    assert (record.status, record.description) == (status, description)


def test_r12_resume_restores_the_status_and_description_before_the_pause() -> None:
    world = stable_world()
    awaiting(world)
    world.controller.pause(KEY, now=world.clock.now)

    record = world.controller.resume(KEY, now=world.clock.now)

    assert (record.status, record.description) == (
        "awaiting_promotion",
        "Deployment is running but requires manual promotion",
    )


# --- record fields and JSON (R13) -------------------------------------------------------------------------------


def records_in_every_state() -> list[DeploymentRecord]:
    """Records of a key that went through initial, canary, promotion, pause, failure with revert and rollback."""
    world = World()
    world.deploy(service_manifest(update={"auto_revert": True}))
    world.converge()
    world.deploy(service_manifest("agent:2", update={"strategy": "canary", "canary": 1, "auto_revert": True}))
    world.converge()
    world.controller.promote(KEY, now=world.clock.now)
    world.converge()
    world.deploy(service_manifest("agent:3", update={"max_parallel": 2, "auto_revert": True}))
    world.bring_up()
    world.controller.pause(KEY, "hold on", now=world.clock.now)
    world.controller.fail(KEY, now=world.clock.now)  # auto-reverts to v2
    world.converge()
    world.controller.rollback(KEY, version="1", reason="back to the start", now=world.clock.now)
    world.bring_up()
    return world.controller.list(KEY)


def test_r13_record_json_has_the_semantics_and_reference_fields() -> None:
    for record in records_in_every_state():
        data = record.to_json()
        assert data.keys() >= SEMANTICS_FIELDS
        assert data.keys() >= REFERENCE_FIELDS
        assert set(data["counters"]) == COUNTERS
        assert data["mode"] in ("initial", "agent_level", "blue_green", "noop", "rerun")
        assert data["policy"]["strategy"] == data["strategy"] or data["mode"] == "blue_green"


def test_r13_record_fields_carry_their_values() -> None:
    records = {r.target_version: r for r in records_in_every_state()}

    assert records["2"].canary_agent_ids == ("worker-0",)
    assert records["2"].counters.desired_canaries == 1
    failed = records["3"]
    assert failed.status == "failed"
    assert failed.reverted_to_version == "2"
    assert failed.previous_status == "running"  # paused before it was failed
    assert failed.require_progress_by_ms is not None
    assert records["4"].rollback == {"from_version": "3", "to_version": "2", "reason": "Deployment marked as failed"}
    assert records["5"].rollback == {"from_version": "4", "to_version": "1", "reason": "back to the start"}


def test_r13_record_json_round_trips() -> None:
    for record in records_in_every_state():
        text = json.dumps(record.to_json())
        again = DeploymentRecord.from_json(json.loads(text))
        assert again == record
        assert again.to_json() == record.to_json()


def test_r13_deployment_ids_use_the_safe_key_and_a_fresh_number() -> None:
    assert safe_key("my app/v1") == "my-app-v1"
    assert safe_key("--a..b_c-d!!") == "a..b_c-d"
    assert deployment_id("my app/v1", 7) == "dep_my-app-v1_7"

    world = World()
    ids = []
    for image in ("agent:1", "agent:2", "agent:2", "agent:3"):
        ids.append(world.deploy(service_manifest(image, key="my app/v1")).deployment_id)
        world.converge()
    assert all(re.fullmatch(r"dep_my-app-v1_\d+", i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert world.record("my app/v1").deployment_key == "my app/v1"


def test_r13_versions_are_never_reused_even_after_failures() -> None:
    world = stable_world()
    world.deploy(service_manifest("agent:2"))
    world.controller.fail(KEY, now=world.clock.now)  # v2 failed
    world.deploy(service_manifest("agent:3"))
    world.deploy(service_manifest("agent:4"))  # v3 cancelled
    world.deploy(service_manifest("agent:5", update={"progress_deadline_ms": 0}))
    world.report(world.fresh()[0], FactKind.FAILED)  # v5 failed
    world.converge()

    record = world.deploy(service_manifest("agent:6"))

    assert record.target_version == "6"
    versions = world.controller.versions(KEY)
    assert [v.version for v in versions] == ["1", "2", "3", "4", "5", "6"]
    assert len({v.deployment_id for v in versions}) == 6
    assert [v.stable for v in versions] == [True, False, False, False, False, False]
    assert world.store.allocate_version(KEY) == "7"


def test_r13_events_have_type_utc_timestamp_with_ms_and_clock_time() -> None:
    world = World()
    world.clock.now = 1_700_000_000_123.0
    world.deploy(service_manifest())
    world.converge()
    world.deploy(service_manifest("agent:2", update={"strategy": "canary"}))
    world.converge()
    world.controller.promote(KEY, now=world.clock.now)
    world.converge()

    for record in world.controller.list(KEY):
        events = world.store.deployment_events(record.deployment_id)
        assert events
        for event in events:
            data = event.to_json()
            assert {"type", "timestamp", "t_ms"} <= data.keys()
            assert ISO_MS_UTC.fullmatch(data["timestamp"])
            moment = datetime.fromtimestamp(data["t_ms"] / 1000, tz=UTC)
            assert data["timestamp"] == moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    first = world.store.deployment_events(world.controller.list(KEY)[0].deployment_id)[0]
    assert (first.type, first.t_ms, first.timestamp) == (
        "deployment_created",
        1_700_000_000_123.0,
        "2023-11-14T22:13:20.123Z",
    )


def test_r13_event_types_include_the_instance_and_lifecycle_events() -> None:
    world = stable_world()
    world.deploy(service_manifest("agent:2", update={"canary": 1, "progress_deadline_ms": 700_000}))
    world.converge()
    world.controller.promote(KEY, now=world.clock.now)
    world.report(world.fresh()[0], FactKind.FAILED)  # an unhealthy replacement
    world.converge()

    types = set(world.event_types(KEY))
    assert {
        "deployment_started",
        "deployment_instance_placed",
        "deployment_instance_healthy",
        "deployment_instance_unhealthy",
        "deployment_canary_ready",
        "deployment_promoted",
        "deployment_successful",
    } <= types


def test_r13_record_keeps_the_last_100_events_and_the_store_keeps_all() -> None:
    # scenario 33: 105+ events -> the newest 100 are kept on the record
    world = stable_world()
    dep = world.deploy(service_manifest("agent:2", update={"strategy": "canary"})).deployment_id
    for i in range(60):
        world.clock.now += 1
        world.controller.pause(dep, f"pause {i}", now=world.clock.now)
        world.controller.resume(dep, f"resume {i}", now=world.clock.now)

    every = world.store.deployment_events(dep)
    record = world.record(dep)
    assert EVENTS_KEPT == 100
    assert len(every) == 2 + 120  # started, canary placed, then the pauses and resumes
    assert len(record.events) == 100
    assert list(record.events) == every[-100:]
    assert record.events[-1].fields == {"reason": "resume 59"}
    assert len(DeploymentRecord.from_json(json.loads(json.dumps(record.to_json()))).events) == 100
