"""What only the Redis store does: MirrorNeuron's layout, self-healing reads, corrupt data, sweep, retries."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import replace
from typing import Any

import fakeredis
import pytest
import redis

from backends.redis import CorruptRecordError, Keys, RedisStore, connect
from backends.redis.server import LocalRedisServer
from mn_deploy_core.records import deployment_id
from tests.backends import samples
from tests.backends.conftest import NAMESPACE
from tests.reference import REFERENCE_FIELDS

K = Keys(NAMESPACE)


@pytest.fixture
def store(redis_client: redis.Redis) -> RedisStore:
    return RedisStore(redis_client, namespace=NAMESPACE, node="node-a")


def save(store: RedisStore, key: str, number: int, **fields: Any) -> str:
    record = samples.deployment(key, number, **fields)
    store.save_deployment(record, [samples.event("deployment_started")])
    return record.deployment_id


def test_a_save_writes_mirrorneuron_keys_and_a_status_event(store: RedisStore, redis_client: redis.Redis) -> None:
    dep = save(store, "agent api", 1)
    store.save_version(samples.version("agent api", "1", deployment=dep))
    raw = redis_client.get(K.deployment(dep))
    assert set(json.loads(raw)) >= REFERENCE_FIELDS
    assert redis_client.smembers(K.deployments) == {dep}
    assert redis_client.get(K.current("agent api")) == dep
    assert redis_client.smembers(K.key_deployments("agent api")) == {dep}
    version = json.loads(redis_client.get(K.version("agent api", "1")))
    assert (version["deployment_key"], version["version"]) == ("agent api", "1")
    assert redis_client.smembers(K.versions("agent api")) == {"1"}
    [(_, status)] = redis_client.xrange(K.status_stream)
    assert status == {
        "node": "node-a",
        "domain": "deployments",
        "entity_id": dep,
        "action": "upsert",
        "revision": hashlib.sha256(raw.encode()).hexdigest(),
    }
    assert redis_client.xlen(K.events(dep)) == 1


def test_mirrorneuron_data_reads_as_ours(store: RedisStore, redis_client: redis.Redis) -> None:
    """Records as MirrorNeuron writes them: no revision, events without t_ms, versions without our fields."""
    dep = "dep_agent-api_41"
    record = dict.fromkeys(REFERENCE_FIELDS)
    record |= {"deployment_id": dep, "deployment_key": "agent-api", "status": "successful", "strategy": "rolling"}
    record |= {"description": "initial deployment completed", "policy": {}, "health": {}, "current_version": "5"}
    record |= {"created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-01T00:00:00.000Z"}
    record |= {"changed_agent_ids": [], "remaining_agent_ids": [], "canary_agent_ids": []}
    record["events"] = [{"type": "deployment_created", "timestamp": "2026-01-01T00:00:01.500Z", "version": "5"}]
    version = {"deployment_key": "agent-api", "version": "5", "job_id": "job-1", "manifest": {}, "stable": True}
    version |= {"manifest_ref": {}, "scheduler": None, "submitted_at": None, "tag": None}
    version |= {"created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-01T00:00:00.000Z"}
    redis_client.set(K.deployment(dep), json.dumps(record))
    redis_client.sadd(K.deployments, dep)
    redis_client.sadd(K.key_deployments("agent-api"), dep)
    redis_client.set(K.current("agent-api"), dep)
    redis_client.set(K.version("agent-api", "5"), json.dumps(version))
    redis_client.sadd(K.versions("agent-api"), "5")

    loaded = store.load_deployment(dep)
    assert loaded is not None
    assert (loaded.revision, loaded.current_version) == (0, "5")
    assert loaded.events[0].t_ms == 1767225601500.0
    assert store.current_deployment_id("agent-api") == dep
    assert [r.deployment_id for r in store.list_deployments(key="agent-api")] == [dep]
    assert [(v.version, v.stable) for v in store.list_versions("agent-api")] == [("5", True)]
    assert store.allocate_version("agent-api") == "6"
    number = store.allocate_deployment_number("agent-api")
    assert number == 42
    loaded.status = "paused"
    assert store.save_deployment(loaded, []) == 1
    save(store, "agent-api", number)
    assert store.current_deployment_id("agent-api") == "dep_agent-api_42"


def test_a_pointer_to_a_record_of_another_key_is_dropped(store: RedisStore, redis_client: redis.Redis) -> None:
    dep = save(store, "b", 1)
    redis_client.set(K.current("a"), dep)
    redis_client.sadd(K.key_deployments("a"), dep)
    assert store.current_deployment_id("a") is None
    assert redis_client.get(K.current("a")) is None
    assert not redis_client.sismember(K.key_deployments("a"), dep)
    assert store.current_deployment_id("b") == dep


def test_a_pointer_to_a_missing_record_purges_the_id(store: RedisStore, redis_client: redis.Redis) -> None:
    dep = save(store, "a", 1)
    redis_client.delete(K.deployment(dep))
    assert store.current_deployment_id("a") is None
    assert redis_client.get(K.current("a")) is None
    assert not redis_client.sismember(K.deployments, dep)
    assert not redis_client.sismember(K.key_deployments("a"), dep)
    assert not redis_client.exists(K.events(dep))


def test_lists_purge_entries_without_a_record(store: RedisStore, redis_client: redis.Redis) -> None:
    gone, kept = save(store, "a", 1), save(store, "a", 2)
    redis_client.delete(K.deployment(gone))
    assert [r.deployment_id for r in store.list_deployments(key="a")] == [kept]
    assert not redis_client.sismember(K.key_deployments("a"), gone)
    assert not redis_client.sismember(K.deployments, gone)
    store.save_version(samples.version("a", "1"))
    store.save_version(samples.version("a", "2"))
    redis_client.delete(K.version("a", "1"))
    assert [v.version for v in store.list_versions("a")] == ["2"]
    assert redis_client.smembers(K.versions("a")) == {"2"}


def test_a_corrupt_record_is_reported_by_id_and_skipped(
    store: RedisStore, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    broken, foreign, good = save(store, "a", 1), save(store, "a", 2), save(store, "a", 3)
    redis_client.set(K.deployment(broken), "{not json")
    redis_client.set(K.deployment(foreign), redis_client.get(K.deployment(good)))
    with caplog.at_level(logging.WARNING):
        assert [r.deployment_id for r in store.list_deployments()] == [good]
        assert [r.deployment_id for r in store.list_deployments(key="a")] == [good]
    assert broken in caplog.text
    assert foreign in caplog.text
    for dep in (broken, foreign):
        with pytest.raises(CorruptRecordError) as raised:
            store.load_deployment(dep)
        assert raised.value.record_id == dep


def test_a_corrupt_version_is_reported_and_skipped(
    store: RedisStore, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    for number in ("1", "2", "3"):
        store.save_version(samples.version("a", number))
    redis_client.set(K.version("a", "1"), "[1, 2")
    redis_client.set(K.version("a", "2"), json.dumps(samples.version("b", "2").to_json()))
    with caplog.at_level(logging.WARNING):
        assert [v.version for v in store.list_versions("a")] == ["3"]
    assert "a@1" in caplog.text
    assert "a@2" in caplog.text
    with pytest.raises(CorruptRecordError, match="version a@2 is corrupt"):
        store.load_version("a", "2")


def test_a_corrupt_record_is_never_overwritten(store: RedisStore, redis_client: redis.Redis) -> None:
    dep = save(store, "a", 1)
    redis_client.set(K.deployment(dep), "garbage")
    with pytest.raises(CorruptRecordError, match=f"deployment {dep} is corrupt"):
        store.save_deployment(samples.deployment("a", 1, revision=1), [])
    assert redis_client.get(K.deployment(dep)) == "garbage"


def test_the_sweep_purges_what_has_no_record_and_keeps_corrupt_records(
    store: RedisStore, redis_client: redis.Redis
) -> None:
    """Reference §18 #10, with versions too."""
    deleted, corrupt, good = save(store, "a", 1), save(store, "b", 2), save(store, "c", 3)
    redis_client.delete(K.deployment(deleted))
    redis_client.set(K.deployment(corrupt), "{")
    for number in ("1", "2", "3"):
        store.save_version(samples.version("a", number))
    redis_client.delete(K.version("a", "1"))
    redis_client.set(K.version("a", "2"), "{")

    report = store.sweep()
    assert report.stale_deployments == (deleted,)
    assert report.corrupt_deployments == (corrupt,)
    assert report.stale_versions == ("a@1",)
    assert report.corrupt_versions == ("a@2",)
    assert redis_client.smembers(K.deployments) == {corrupt, good}
    assert redis_client.get(K.current("a")) is None
    assert not redis_client.exists(K.key_deployments("a"))
    assert redis_client.get(K.current("b")) == corrupt
    assert redis_client.smembers(K.key_deployments("b")) == {corrupt}
    assert redis_client.smembers(K.versions("a")) == {"2", "3"}
    again = store.sweep()
    assert (again.stale_deployments, again.stale_versions) == ((), ())


def test_the_namespace_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    client = fakeredis.FakeRedis(decode_responses=True)
    monkeypatch.delenv("MN_REDIS_NAMESPACE", raising=False)
    RedisStore(client).allocate_version("a")
    monkeypatch.setenv("MN_REDIS_NAMESPACE", "other")
    RedisStore(client).allocate_version("a")
    assert sorted(client.keys()) == [
        "mirror_neuron:deployment:key:a:last_version",
        "other:deployment:key:a:last_version",
    ]


def test_a_client_returning_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match="decode_responses"):
        RedisStore(fakeredis.FakeRedis())


class LosesOneReply(redis.Connection):
    """Once armed, reads the next reply and then drops the connection, as a network cut after the write would."""

    armed = False

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        reply = super().read_response(*args, **kwargs)
        if LosesOneReply.armed:
            LosesOneReply.armed = False
            self.disconnect()
            raise redis.ConnectionError("reply lost")
        return reply


def test_a_save_whose_reply_was_lost_is_retried_and_applied_once(redis_server: LocalRedisServer) -> None:
    client = connect(redis_server.url, connection_class=LosesOneReply)
    client.flushdb()
    store = RedisStore(client, namespace=NAMESPACE)
    record = samples.deployment("a", 1)
    record.revision = store.save_deployment(record, [samples.event("deployment_started")])
    record.status = "paused"
    LosesOneReply.armed = True
    assert store.save_deployment(record, [samples.event("deployment_paused")]) == 2
    assert not LosesOneReply.armed
    assert [e.type for e in store.deployment_events(record.deployment_id)] == [
        "deployment_started",
        "deployment_paused",
    ]
    assert client.xlen(K.status_stream) == 2
    client.close()


def test_a_dropped_connection_is_retried(redis_server: LocalRedisServer, real_redis: redis.Redis) -> None:
    client = connect(redis_server.url)
    store = RedisStore(client, namespace=NAMESPACE)
    assert store.allocate_version("a") == "1"
    assert real_redis.client_kill_filter(_type="normal", skipme=True) >= 1
    assert store.allocate_version("a") == "2"
    client.close()


def test_retention_keeps_the_newest_versions_and_whatever_the_key_still_needs(store: RedisStore) -> None:
    """Versions 1-6 of `api`, each with its deployment and events; 2 is stable, 6 current and 3 still running.
    Keeping two: 1, 4 go (with their records and events), 2 (stable), 3 (active), 5 and 6 (newest) stay."""
    for number in range(1, 7):
        version = str(number)
        store.save_version(samples.version("api", version, deployment=deployment_id("api", number)))
        status = "running" if number == 3 else "successful"
        save(store, "api", number, status=status, current_version="6", stable_version="2")
    save(store, "other", 7)

    assert store.retain(keep=2) == ["api@1", "api@4"]

    assert [v.version for v in store.list_versions("api")] == ["2", "3", "5", "6"]
    assert [r.deployment_id for r in store.list_deployments("api")] == [deployment_id("api", n) for n in (2, 3, 5, 6)]
    assert store.deployment_events(deployment_id("api", 1)) == []
    assert len(store.deployment_events(deployment_id("api", 2))) == 1
    assert store.retain(keep=2) == []


def test_the_bundles_versions_ship_with_are_the_referenced_ones(store: RedisStore) -> None:
    store.save_version(replace(samples.version("api", "1"), manifest_ref={"bundle_fingerprint": "f1"}))
    store.save_version(replace(samples.version("api", "2"), manifest_ref={}))
    store.save_version(replace(samples.version("web", "1"), manifest_ref={"bundle_fingerprint": "f2"}))

    assert store.referenced_bundles() == {"f1", "f2"}


def test_each_stored_event_is_logged_as_one_decision_line(store: RedisStore, caplog: pytest.LogCaptureFixture) -> None:
    record = samples.deployment("api", 1)
    with caplog.at_level(logging.INFO, logger="mn_deploy.decisions"):
        store.save_deployment(record, [samples.event("deployment_started", 5.0, version="1")])

    (line,) = [r.getMessage() for r in caplog.records if r.name == "mn_deploy.decisions"]
    assert json.loads(line) == {
        "deployment_id": record.deployment_id,
        "deployment_key": "api",
        "event": "deployment_started",
        "t_ms": 5.0,
        "version": "1",
    }
    assert "\n" not in line
