"""Payload bundles: safe paths, fingerprints, both stores, and which bundle a version runs."""

from __future__ import annotations

import fakeredis
import pytest
import redis

from backends.live.bundles import (
    BundleStore,
    MemoryBundleStore,
    UnsafePayloadPathError,
    bundle_fingerprint,
    check_payload_paths,
    resolve_fingerprint,
)
from backends.live.redis_bundles import RedisBundleStore
from mn_deploy_core.records import VersionRecord

NAMESPACE = "mn_test"
FILES = {"input.json": b"{}", "nested/model.bin": bytes(range(256))}


@pytest.fixture(params=["memory", "fakeredis", "redis"])
def bundles(request: pytest.FixtureRequest) -> BundleStore:
    if request.param == "memory":
        return MemoryBundleStore()
    return RedisBundleStore(_redis(request), namespace=NAMESPACE)


@pytest.fixture(params=["fakeredis", "redis"])
def redis_client(request: pytest.FixtureRequest) -> redis.Redis:
    return _redis(request)


def _redis(request: pytest.FixtureRequest) -> redis.Redis:
    if request.param == "fakeredis":
        return fakeredis.FakeRedis(decode_responses=True, protocol=2)
    client: redis.Redis = request.getfixturevalue("real_redis")
    return client


@pytest.mark.parametrize("path", ["input.json", "nested/deep/input.json", "./input.json", "a..b/c"])
def test_relative_paths_inside_the_bundle_are_safe(path: str) -> None:
    check_payload_paths([path])


@pytest.mark.parametrize("path", ["", ".", "/abs.json", "..", "../up.json", "a/../../up.json", "a/.."])
def test_empty_absolute_and_parent_paths_are_unsafe(path: str) -> None:
    with pytest.raises(UnsafePayloadPathError) as caught:
        check_payload_paths(["input.json", path])

    assert caught.value.message == f"Unsafe payload path: {path}"


def test_the_fingerprint_depends_on_paths_and_contents_only() -> None:
    reordered = dict(reversed(list(FILES.items())))

    assert bundle_fingerprint(reordered) == bundle_fingerprint(FILES)
    assert bundle_fingerprint({**FILES, "input.json": b"[]"}) != bundle_fingerprint(FILES)
    assert bundle_fingerprint({"renamed.json": b"{}"}) != bundle_fingerprint({"input.json": b"{}"})


def test_a_bundle_round_trips_byte_for_byte(bundles: BundleStore) -> None:
    fingerprint = bundles.put(FILES)

    assert fingerprint == bundle_fingerprint(FILES)
    assert bundles.get(fingerprint) == FILES
    assert bundles.get("0" * 64) is None


def test_versions_are_bound_to_their_bundle(bundles: BundleStore) -> None:
    fingerprint = bundles.put(FILES)
    bundles.bind("agent-api", "1", fingerprint)

    assert bundles.bound("agent-api", "1") == fingerprint
    assert bundles.bound("agent-api", "2") is None
    assert bundles.bound("billing", "1") is None


def test_redis_keeps_bundles_under_mirrorneurons_key_until_bound(redis_client: redis.Redis) -> None:
    store = RedisBundleStore(redis_client, namespace=NAMESPACE, ttl_s=60)
    fingerprint = store.put(FILES)
    key = f"{NAMESPACE}:bundle:{fingerprint}"

    assert 0 < redis_client.ttl(key) <= 60
    store.bind("agent-api", "1", fingerprint)
    store.put(FILES)
    assert redis_client.ttl(key) == -1  # referenced by a version: kept, even when uploaded again
    assert redis_client.hget(f"{NAMESPACE}:deployment:key:agent-api:bundles", "1") == fingerprint


def _version(number: str, to_version: str | None = None) -> VersionRecord:
    rollback = {"from_version": "x", "to_version": to_version, "reason": None} if to_version else None
    return VersionRecord(
        "agent-api", number, f"dep_agent-api_{number}", None, {}, "digest", "t", "t", rollback=rollback
    )


def test_a_rolled_back_version_runs_the_bundle_of_the_version_it_copied() -> None:
    bundles = MemoryBundleStore()
    bundles.bind("agent-api", "1", "fp1")
    bundles.bind("agent-api", "2", "fp2")
    versions = [_version("1"), _version("2"), _version("3", to_version="1"), _version("4", to_version="3")]

    assert resolve_fingerprint(bundles, versions, "2") == "fp2"
    assert resolve_fingerprint(bundles, versions, "4") == "fp1"
    assert resolve_fingerprint(bundles, versions, "9") is None


def test_versions_without_payloads_and_rollback_cycles_have_no_bundle() -> None:
    versions = [_version("1"), _version("2", to_version="3"), _version("3", to_version="2")]

    assert resolve_fingerprint(MemoryBundleStore(), versions, "1") is None
    assert resolve_fingerprint(MemoryBundleStore(), versions, "2") is None
