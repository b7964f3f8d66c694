"""The live controller's recorder and its instances' lives on a real redis-server: inputs kept per deployment in
order, behind the controller's fence, stored with the decision they lead to (or by the driver's settle when there is
none); capped; removed with their deployment by retention and by the stale sweep, as its events are."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import redis

from backends.redis import FencedError, Keys, RedisStore, Transaction
from backends.redis import recorder as recorder_module
from backends.redis.fencing import Fence
from backends.redis.recorder import RedisRecorder, read_inputs
from mn_deploy.traces import read_trace
from mn_deploy_core.ports import Commit, Fact, FactKind
from mn_deploy_core.records import InstanceRecord, deployment_id
from mn_deploy_core.trace import Input, action_entry, fact_entry
from tests.backends import samples
from tests.backends.conftest import NAMESPACE

K = Keys(NAMESPACE)
DEP = deployment_id("api", 1)


def fenced(client: redis.Redis, holder: str = "me:1") -> Transaction:
    client.set(K.controller_lease, holder)
    return Transaction(client, Fence(K.controller_lease, holder), breaks=True)


def settled(transaction: Transaction) -> None:
    """What the driver does after a call that decided nothing: store what it left queued."""
    transaction.commit()


def life(instance_id: str, placed_ms: float, **fields: Any) -> InstanceRecord:
    return InstanceRecord(instance_id, "worker", "job-1", "api", DEP, "1", "primary", placed_ms, **fields)


def test_inputs_are_kept_per_deployment_in_the_order_they_were_taken_in(real_redis: redis.Redis) -> None:
    transaction = fenced(real_redis)
    recorder = RedisRecorder(real_redis, K, transaction)
    entries = [
        action_entry("deploy", target="api@1"),
        fact_entry(Fact("i1", FactKind.PLACED)),
        fact_entry(Fact("i1", FactKind.CHECK_FAILING, "http")),
    ]
    for t_ms, entry in zip((10.0, 12.5, 20.0), entries, strict=True):
        recorder.record(DEP, t_ms, entry)
    recorder.record(deployment_id("api", 2), 30.0, fact_entry(Fact("i2", FactKind.RUNNING)))
    assert real_redis.xlen(K.inputs(DEP)) == 0, "queued, not sent: each costs no round trip of its own"
    settled(transaction)

    kept = read_inputs(real_redis, K, DEP)
    assert kept.inputs == [Input(DEP, t, e) for t, e in zip((10.0, 12.5, 20.0), entries, strict=True)]
    assert not kept.cut
    assert [i.entry for i in read_inputs(real_redis, K, deployment_id("api", 2)).inputs] == [
        {"fact": "running", "instance_id": "i2"}
    ]


def test_an_input_joins_the_decision_under_way_and_is_stored_with_it(real_redis: redis.Redis) -> None:
    transaction = fenced(real_redis)
    recorder = RedisRecorder(real_redis, K, transaction)
    transaction.write(lambda pipe: pipe.set(f"{K.prefix}decided", "1"))  # a decision's first write, queued

    recorder.record(DEP, 1.0, action_entry("deploy", target="api@1"))
    assert real_redis.xlen(K.inputs(DEP)) == 0, "not before the decision"

    transaction.commit()
    assert real_redis.xlen(K.inputs(DEP)) == 1
    assert real_redis.get(f"{K.prefix}decided") == "1"


def test_a_deposed_controller_records_nothing(real_redis: redis.Redis) -> None:
    transaction = fenced(real_redis)
    recorder = RedisRecorder(real_redis, K, transaction)
    recorder.record(DEP, 1.0, fact_entry(Fact("i1", FactKind.PLACED)))
    settled(transaction)
    real_redis.set(K.controller_lease, "successor:2")

    recorder.record(DEP, 2.0, fact_entry(Fact("i1", FactKind.RUNNING)))
    with pytest.raises(FencedError):
        settled(transaction)

    assert [i.t_ms for i in read_inputs(real_redis, K, DEP).inputs] == [1.0]


def test_a_stream_past_its_cap_keeps_its_newest_inputs_and_says_it_was_cut(
    real_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recorder_module, "INPUTS_KEPT", 10)
    store = RedisStore(real_redis, namespace=NAMESPACE)
    store.save_deployment(samples.deployment("api", 1), [samples.event("deployment_started")])
    transaction = fenced(real_redis)
    recorder = RedisRecorder(real_redis, K, transaction)
    for n in range(300):
        recorder.record(DEP, float(n), fact_entry(Fact(f"i{n}", FactKind.PLACED)))
        settled(transaction)

    kept = read_inputs(real_redis, K, DEP)
    assert kept.cut
    assert 10 <= len(kept.inputs) < 300, "trimmed by whole stream nodes (MAXLEN ~)"
    assert kept.inputs[-1].t_ms == 299.0, "the newest are kept"
    trace = read_trace(real_redis, "api", namespace=NAMESPACE)
    assert (trace["complete"], trace["cut"]) == (False, [DEP])


def test_a_stopped_instance_keeps_its_last_record_among_its_deployments_lives(real_redis: redis.Redis) -> None:
    store = RedisStore(real_redis, namespace=NAMESPACE)
    running, other = life("i1", 1.0, running_ms=2.0), life("i2", 3.0)
    store.save_instances([running, other], [])
    stopped = replace(running, stopped_ms=9.0)

    store.commit(Commit([], [], [stopped], ["i1"]))

    assert [i.instance_id for i in store.list_instances()] == ["i2"]
    assert store.instance_lives(DEP) == [stopped, other]
    assert store.instance_lives(deployment_id("api", 2)) == []


def test_retention_removes_inputs_and_lives_with_their_deployment(real_redis: redis.Redis) -> None:
    store = RedisStore(real_redis, namespace=NAMESPACE)
    transaction = fenced(real_redis)
    recorder = RedisRecorder(real_redis, K, transaction)
    for number in (1, 2, 3):
        dep = deployment_id("api", number)
        store.save_version(samples.version("api", str(number), deployment=dep))
        store.save_deployment(
            samples.deployment("api", number, status="successful", current_version="3", stable_version="3"), []
        )
        recorder.record(dep, float(number), fact_entry(Fact(f"i{number}", FactKind.PLACED)))
        settled(transaction)
        stopped = replace(life(f"i{number}", 1.0), deployment_id=dep, stopped_ms=2.0)
        store.commit(Commit([], [], [stopped], [stopped.instance_id]))

    assert store.retain(keep=1) == ["api@1", "api@2"]

    for gone in (1, 2):
        assert not real_redis.exists(K.inputs(deployment_id("api", gone)), K.lives(deployment_id("api", gone)))
    assert real_redis.exists(K.inputs(deployment_id("api", 3)), K.lives(deployment_id("api", 3))) == 2


def test_the_stale_sweep_removes_the_inputs_and_lives_of_a_deployment_whose_record_is_gone(
    real_redis: redis.Redis,
) -> None:
    store = RedisStore(real_redis, namespace=NAMESPACE)
    store.save_deployment(samples.deployment("api", 1), [])
    transaction = fenced(real_redis)
    RedisRecorder(real_redis, K, transaction).record(DEP, 1.0, fact_entry(Fact("i1", FactKind.PLACED)))
    settled(transaction)
    store.commit(Commit([], [], [life("i1", 1.0, stopped_ms=2.0)], ["i1"]))
    real_redis.delete(K.deployment(DEP))

    assert store.sweep().stale_deployments == (DEP,)

    assert not real_redis.exists(K.inputs(DEP), K.lives(DEP), K.events(DEP))
