"""The Store contract, the same on every backend (memory, fakeredis, real redis-server)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from mn_deploy_core.errors import ConflictError
from mn_deploy_core.ports import Store
from mn_deploy_core.records import EVENTS_KEPT, DeploymentRecord, InstanceRecord
from tests.backends import samples


def saved(store: Store, record: DeploymentRecord, *event_types: str) -> DeploymentRecord:
    """Save like the controller does: the record then carries the revision the store returned."""
    record.revision = store.save_deployment(record, [samples.event(t) for t in event_types])
    return record


def test_deployment_numbers_are_never_handed_out_twice(store: Store) -> None:
    numbers = [store.allocate_deployment_number(key) for key in ("a", "b", "a", "c", "a")]
    assert len(set(numbers)) == len(numbers)
    assert numbers == sorted(numbers)


def test_versions_count_up_from_one_and_are_never_reused(store: Store) -> None:
    assert [store.allocate_version("a") for _ in range(3)] == ["1", "2", "3"]
    assert store.allocate_version("b") == "1"
    store.save_version(samples.version("a", "2"))
    assert store.allocate_version("a") == "4"


def test_a_version_is_allocated_above_every_stored_integer_version(store: Store) -> None:
    store.save_version(samples.version("a", "7"))
    store.save_version(samples.version("a", "latest"))
    assert store.allocate_version("a") == "8"


def test_a_saved_record_reads_back_with_the_new_revision(store: Store) -> None:
    record = samples.deployment("api", 1, current_version="1", changed_agent_ids=("w-0", "w-1"))
    assert store.save_deployment(record, [samples.event()]) == 1
    loaded = store.load_deployment(record.deployment_id)
    assert loaded is not None
    assert loaded.revision == 1
    assert {**loaded.to_json(), "revision": 0} == record.to_json()


def test_each_save_advances_the_revision(store: Store) -> None:
    record = saved(store, samples.deployment("api", 1))
    record.status = "successful"
    assert store.save_deployment(record, []) == 2
    loaded = store.load_deployment(record.deployment_id)
    assert loaded is not None
    assert (loaded.status, loaded.revision) == ("successful", 2)


def test_a_stale_save_raises_conflict_and_changes_nothing(store: Store) -> None:
    first = saved(store, samples.deployment("api", 1), "deployment_started")
    stale = store.load_deployment(first.deployment_id)
    assert stale is not None
    first.status = "paused"
    saved(store, first, "deployment_paused")
    stale.status = "failed"
    with pytest.raises(ConflictError) as raised:
        store.save_deployment(stale, [samples.event("deployment_failed")])
    assert (raised.value.deployment_id, raised.value.expected, raised.value.actual) == (first.deployment_id, 1, 2)
    loaded = store.load_deployment(first.deployment_id)
    assert loaded is not None
    assert (loaded.status, loaded.revision) == ("paused", 2)
    assert [e.type for e in store.deployment_events(first.deployment_id)] == ["deployment_started", "deployment_paused"]


def test_a_new_record_must_claim_revision_zero(store: Store) -> None:
    record = samples.deployment("api", 1, revision=3)
    with pytest.raises(ConflictError) as raised:
        store.save_deployment(record, [])
    assert (raised.value.expected, raised.value.actual) == (3, 0)
    assert store.load_deployment(record.deployment_id) is None


def test_missing_records_load_as_none(store: Store) -> None:
    assert store.load_deployment("dep_api_9") is None
    assert store.load_version("api", "1") is None
    assert store.current_deployment_id("api") is None
    assert store.list_deployments() == []
    assert store.list_versions("api") == []
    assert store.deployment_events("dep_api_9") == []


def test_the_newest_deployment_of_a_key_is_current(store: Store) -> None:
    saved(store, samples.deployment("api", 1))
    saved(store, samples.deployment("api", 2))
    assert store.current_deployment_id("api") == "dep_api_2"


def test_saving_an_older_deployment_does_not_take_over_current(store: Store) -> None:
    old = saved(store, samples.deployment("api", 1))
    saved(store, samples.deployment("api", 2))
    old.status = "cancelled"
    saved(store, old)
    assert store.current_deployment_id("api") == "dep_api_2"


def test_numbers_compare_as_integers_not_text(store: Store) -> None:
    saved(store, samples.deployment("api", 10))
    saved(store, samples.deployment("api", 9))
    assert store.current_deployment_id("api") == "dep_api_10"


def test_a_record_moved_to_another_key_leaves_the_old_key(store: Store) -> None:
    """Reference §18 #8: D under A, then under B: lookup by A fails and A's list no longer holds D."""
    record = saved(store, samples.deployment("a", 1))
    record.deployment_key = "b"
    saved(store, record)
    assert store.current_deployment_id("a") is None
    assert store.current_deployment_id("b") == record.deployment_id
    assert store.list_deployments(key="a") == []
    assert [r.deployment_id for r in store.list_deployments(key="b")] == [record.deployment_id]


def test_list_filters_by_key_and_status_sorted_by_id(store: Store) -> None:
    saved(store, samples.deployment("b", 3, status="successful"))
    saved(store, samples.deployment("a", 2, status="running"))
    saved(store, samples.deployment("a", 1, status="successful"))
    assert [r.deployment_id for r in store.list_deployments()] == ["dep_a_1", "dep_a_2", "dep_b_3"]
    assert [r.deployment_id for r in store.list_deployments(key="a")] == ["dep_a_1", "dep_a_2"]
    assert [r.deployment_id for r in store.list_deployments(status="successful")] == ["dep_a_1", "dep_b_3"]
    assert [r.deployment_id for r in store.list_deployments(key="a", status="running")] == ["dep_a_2"]
    assert store.list_deployments(key="c") == []


def test_the_store_keeps_every_event_while_the_record_keeps_the_newest(store: Store) -> None:
    """Reference §18 #33, with the whole history still readable in one call."""
    record = saved(store, samples.deployment("api", 1))
    for start in range(0, 105, 15):
        batch = [samples.event("deployment_instance_placed", float(i), n=i) for i in range(start, start + 15)]
        for e in batch:
            record.with_event(e)
        record.revision = store.save_deployment(record, batch)
    history = store.deployment_events(record.deployment_id)
    assert [e.fields["n"] for e in history] == list(range(105))
    assert history[0].t_ms == 0.0
    loaded = store.load_deployment(record.deployment_id)
    assert loaded is not None
    assert [e.fields["n"] for e in loaded.events] == list(range(105 - EVENTS_KEPT, 105))


def test_versions_list_in_integer_order(store: Store) -> None:
    for number in ("10", "2", "1", "9"):
        store.save_version(samples.version("api", number))
    store.save_version(samples.version("other", "3"))
    assert [v.version for v in store.list_versions("api")] == ["1", "2", "9", "10"]


def test_a_version_rewritten_as_stable_reads_back_stable(store: Store) -> None:
    store.save_version(samples.version("api", "1"))
    store.save_version(samples.version("api", "1", stable=True))
    loaded = store.load_version("api", "1")
    assert loaded == samples.version("api", "1", stable=True)
    assert [v.stable for v in store.list_versions("api")] == [True]


def test_live_instances_are_upserted_and_removed_in_one_write(store: Store) -> None:
    first = InstanceRecord("dep_a_1.w-0.0", "w-0", "job_a_1", "a", "dep_a_1", "1", "primary", 5.0)
    second = InstanceRecord("dep_a_1.w-1.0", "w-1", "job_a_1", "a", "dep_a_1", "1", "canary", 6.0)
    store.save_instances([first, second], [])
    store.save_instances([replace(first, healthy=True)], [second.instance_id])
    assert store.list_instances() == [replace(first, healthy=True)]


def test_an_instance_lifecycle_reads_back_as_saved_and_a_stopped_one_is_gone(store: Store) -> None:
    lived = InstanceRecord(
        "dep_a_1.w-0.0",
        "w-0",
        "job_a_1",
        "a",
        "dep_a_1",
        "1",
        "primary",
        5.0,
        healthy=True,
        serving=True,
        running_ms=7.0,
        healthy_ms=20.0,
        restart_ms=(30.0, 50.0),
        passing_again_ms=(40.0, None),
        promoted_ms=15.0,
        discoverable_ms=((20.0, 29.0), (40.0, None)),
    )
    stopped = replace(lived, instance_id="dep_a_1.w-1.0", agent_id="w-1", stopped_ms=60.0, serving=False)
    store.save_instances([lived], [])
    store.save_instances([stopped], [stopped.instance_id])
    assert store.list_instances() == [lived]


def test_a_list_is_read_a_page_at_a_time_after_an_id(store: Store) -> None:
    for key, number, status in [("a", 1, "successful"), ("b", 2, "failed"), ("a", 3, "running"), ("a", 4, "failed")]:
        saved(store, samples.deployment(key, number, status=status))

    def ids(**page: Any) -> list[str]:
        return [r.deployment_id for r in store.list_deployments(**page)]

    assert ids(limit=2) == ["dep_a_1", "dep_a_3"]
    assert ids(after="dep_a_3", limit=2) == ["dep_a_4", "dep_b_2"]
    assert ids(after="dep_b_2") == []
    assert ids(key="a", after="dep_a_1") == ["dep_a_3", "dep_a_4"]
    assert ids(status="failed", limit=1) == ["dep_a_4"]
    assert ids(status="failed", after="dep_a_4", limit=1) == ["dep_b_2"]
