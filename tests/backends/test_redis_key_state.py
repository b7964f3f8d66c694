"""`read_key_state`: a key's state read from a real redis-server by reads alone, the same records the store reads,
and what does not decode left out and named, never raised."""

from __future__ import annotations

from typing import Any

import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backends.planning import KeyState, plan_deploy
from backends.redis import RedisStore
from backends.redis.keys import Keys, namespace_from_env
from backends.redis_key_state import read_key_state
from mn_deploy.traces import read_trace
from tests.scripted import World, service_manifest

KEY = "agent-api"
KEYS = Keys(namespace_from_env())


def redis_world(client: redis.Redis) -> World:
    """Version 1 stable and version 2 rolling out, on Redis."""
    world = World(store=RedisStore(client))  # type: ignore[arg-type]  # any Store will do
    world.deploy(service_manifest(count=3))
    world.converge()
    world.deploy(service_manifest("agent:2", count=3))
    return world


def dumped(client: redis.Redis) -> dict[str, Any]:
    return {name: client.dump(name) for name in sorted(client.scan_iter())}


def as_json(state: KeyState) -> tuple[Any, ...]:
    return (
        [r.to_json() for r in state.deployments],
        [v.to_json() for v in state.versions],
        sorted((i.to_json() for i in state.instances), key=lambda i: str(i["instance_id"])),
    )


def test_it_reads_what_the_store_reads_and_its_counters(real_redis: redis.Redis) -> None:
    world = redis_world(real_redis)
    state, skipped = read_key_state(real_redis, KEY)
    assert skipped == []
    assert as_json(state) == as_json(KeyState.of_store(world.store, KEY))
    assert (state.last_number, state.last_version) == (2, 2)
    real_redis.set(KEYS.last_version(KEY), "9")  # versions retention forgot still count
    assert read_key_state(real_redis, KEY)[0].last_version == 9


def test_reading_writes_nothing_even_where_the_store_would_heal(real_redis: redis.Redis) -> None:
    redis_world(real_redis)
    real_redis.sadd(KEYS.key_deployments(KEY), "dep_agent-api_7")  # an id without its record
    real_redis.sadd(KEYS.versions(KEY), "8")
    before = dumped(real_redis)
    state, skipped = read_key_state(real_redis, KEY)
    assert dumped(real_redis) == before
    assert "dep_agent-api_7" not in {r.deployment_id for r in state.deployments}
    assert (state.last_number, state.last_version, skipped) == (7, 8, [])


def test_exporting_a_trace_writes_nothing_even_where_the_store_would_heal(real_redis: redis.Redis) -> None:
    """A user who may only read can export: the orphans a store's list would purge are left, and left out."""
    redis_world(real_redis)
    real_redis.sadd(KEYS.key_deployments(KEY), "dep_agent-api_7")
    real_redis.sadd(KEYS.versions(KEY), "8")
    before = dumped(real_redis)
    trace = read_trace(real_redis, KEY)
    assert dumped(real_redis) == before
    assert [d["deployment_id"] for d in trace["deployments"]] == ["dep_agent-api_1", "dep_agent-api_2"]
    assert [v["version"] for v in trace["versions"]] == ["1", "2"]


def test_versions_come_in_version_order_as_the_store_lists_them(real_redis: redis.Redis) -> None:
    world = redis_world(real_redis)
    for n in range(3, 11):
        world.deploy(service_manifest(f"agent:{n}", count=3))
    state, _ = read_key_state(real_redis, KEY)
    assert [v.version for v in state.versions] == [str(n) for n in range(1, 11)]


def test_a_plan_from_redis_names_the_deployment_the_store_would_allocate(real_redis: redis.Redis) -> None:
    world = redis_world(real_redis)
    state, _ = read_key_state(real_redis, KEY)
    plan = plan_deploy(state, service_manifest("agent:3", count=3), None, None, None, now=world.clock.now)
    record = world.deploy(service_manifest("agent:3", count=3))
    assert (plan.record.deployment_id, plan.record.target_version, plan.cancels) == (
        record.deployment_id,
        record.target_version,
        "dep_agent-api_2",
    )


def test_corrupt_records_are_left_out_and_named(real_redis: redis.Redis) -> None:
    redis_world(real_redis)
    real_redis.set(KEYS.deployment("dep_agent-api_1"), "{not json")
    real_redis.set(KEYS.version(KEY, "2"), "[" * 100_000)
    real_redis.hset(KEYS.live_instances, "dep_agent-api_2.worker-0.0", '{"instance_id": NaN}')
    state, skipped = read_key_state(real_redis, KEY)
    assert [r.deployment_id for r in state.deployments] == ["dep_agent-api_2"]
    assert [v.version for v in state.versions] == ["1"]
    assert len(skipped) == 3
    assert all("corrupt" in line and "\n" not in line for line in skipped)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    raw=st.one_of(
        st.text(),
        st.recursive(
            st.none() | st.floats() | st.text(), lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner)
        ).map(repr),
        st.integers(1, 200_000).map(lambda depth: '{"a":' * depth),
        st.sampled_from(
            [
                '{"deployment_id": "dep_agent-api_1"}',
                "NaN",
                '{"events": 1}',
                "\u2028\x1b[2J",
            ]
        ),
    )
)
def test_any_stored_text_is_read_or_left_out_never_raised(real_redis: redis.Redis, raw: str) -> None:
    real_redis.flushdb()
    real_redis.sadd(KEYS.key_deployments(KEY), "dep_agent-api_1")
    real_redis.set(KEYS.deployment("dep_agent-api_1"), raw)
    real_redis.sadd(KEYS.versions(KEY), "1")
    real_redis.set(KEYS.version(KEY, "1"), raw)
    real_redis.hset(KEYS.live_instances, "i", raw)
    state, skipped = read_key_state(real_redis, KEY)
    assert len(state.deployments) + len(state.versions) + len(state.instances) + len(skipped) <= 3
    assert all("\n" not in line for line in skipped)
