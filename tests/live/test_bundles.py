"""Payload bundles: safe paths, fingerprints, both stores, and keeping the bundles versions reference."""

from __future__ import annotations

import tempfile
from pathlib import Path

import fakeredis
import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.live.controller.bundles import BundleStore, MemoryBundleStore
from backends.live.worker.supervisor import materialise
from backends.protocol.bundles import (
    MAX_NAME_BYTES,
    MAX_PATH_BYTES,
    UnsafePayloadPathError,
    bundle_fingerprint,
    check_payload_paths,
)
from backends.redis.bundles import RedisBundleStore
from tests.awkward import odd_text

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


@pytest.mark.parametrize(
    "path", ["", ".", "./", "/abs.json", "//host/abs.json", "..", "../up.json", "a/../../up.json", "a/.."]
)
def test_empty_absolute_and_parent_paths_are_unsafe(path: str) -> None:
    with pytest.raises(UnsafePayloadPathError) as caught:
        check_payload_paths(["input.json", path])

    assert caught.value.message == f"Unsafe payload path: {path}"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("model\0.bin", 'Unsafe payload path: "model\\u0000.bin" (holds a NUL byte)'),
        ("\udcff.bin", 'Unsafe payload path: "\\udcff.bin" (not UTF-8 text)'),
        ("d/" + "n" * 256, f"Unsafe payload path: d/{'n' * 95}... (has a name longer than {MAX_NAME_BYTES} bytes)"),
        ("é" * 128, f"Unsafe payload path: {'é' * 97}... (has a name longer than {MAX_NAME_BYTES} bytes)"),
        ("d/" * 513, f"Unsafe payload path: {'d/' * 48}d... (longer than {MAX_PATH_BYTES} bytes)"),
        ("../line\nup", 'Unsafe payload path: "../line\\nup"'),
    ],
    ids=["nul", "not-utf8", "long-name", "long-multibyte-name", "long-path", "newline-quoted"],
)
def test_a_refused_path_is_one_short_line_saying_why(path: str, message: str) -> None:
    with pytest.raises(UnsafePayloadPathError) as caught:
        check_payload_paths(["input.json", path])

    assert caught.value.message == message


def test_the_longest_names_and_paths_file_systems_hold_are_safe() -> None:
    check_payload_paths(["n" * MAX_NAME_BYTES, "é" * (MAX_NAME_BYTES // 2), f"{'d/' * 400}{'f' * 224}"])


_parts = st.sampled_from(["", ".", "..", "a", "\0", "é" * 128, "n" * 256]) | odd_text
payload_paths = st.builds(lambda root, parts: root + "/".join(parts), st.sampled_from(["", "/"]), st.lists(_parts))


@settings(max_examples=300, deadline=None)
@given(path=payload_paths)
def test_fuzz_a_path_is_refused_or_a_worker_writes_it_inside_its_directory(path: str) -> None:
    """What the door lets through, a worker can write: nothing but UnsafePayloadPathError is refused later."""
    with tempfile.TemporaryDirectory() as root:
        directory = Path(root, "bundle")
        try:
            check_payload_paths([path])
        except UnsafePayloadPathError as error:
            assert "\n" not in error.message
            return
        materialise({path: b"x"}, directory)

        written = [p for p in Path(root).rglob("*") if p.is_file()]
        assert [p.read_bytes() for p in written] == [b"x"]
        assert written[0].resolve().is_relative_to(directory.resolve())


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


def test_persisting_a_bundle_keeps_it(bundles: BundleStore) -> None:
    fingerprint = bundles.put(FILES)
    bundles.persist(fingerprint)

    assert bundles.get(fingerprint) == FILES


def test_redis_keeps_bundles_under_mirrorneurons_key_until_persisted(redis_client: redis.Redis) -> None:
    store = RedisBundleStore(redis_client, namespace=NAMESPACE, ttl_s=60)
    fingerprint = store.put(FILES)
    key = f"{NAMESPACE}:bundle:{fingerprint}"

    assert 0 < redis_client.ttl(key) <= 60
    store.persist(fingerprint)
    store.put(FILES)
    assert redis_client.ttl(key) == -1  # referenced by a version: kept, even when uploaded again


def test_uploading_a_bundle_again_restarts_its_ttl(redis_client: redis.Redis) -> None:
    store = RedisBundleStore(redis_client, namespace=NAMESPACE, ttl_s=60)
    fingerprint = store.put(FILES)
    key = f"{NAMESPACE}:bundle:{fingerprint}"
    redis_client.expire(key, 5)

    store.put(FILES)

    assert redis_client.ttl(key) > 5  # a deploy about to reference it must not find it expired


def test_retention_releases_kept_bundles_no_version_references(redis_client: redis.Redis) -> None:
    """A kept bundle nobody references gets the upload TTL back (it goes unless deployed again); a referenced one
    stays kept, and one still waiting for its deploy keeps the TTL it has."""
    store = RedisBundleStore(redis_client, namespace=NAMESPACE, ttl_s=60)
    referenced, orphan, waiting = (store.put({"a.txt": text.encode()}) for text in ("ref", "orphan", "waiting"))
    store.persist(referenced)
    store.persist(orphan)
    redis_client.expire(f"{NAMESPACE}:bundle:{waiting}", 30)

    assert store.release_unreferenced({referenced}) == [orphan]

    def ttl(fingerprint: str) -> int:
        return int(redis_client.ttl(f"{NAMESPACE}:bundle:{fingerprint}"))

    assert (ttl(referenced), 0 < ttl(orphan) <= 60, 0 < ttl(waiting) <= 30) == (-1, True, True)
    store.persist(orphan)  # deployed again before it went
    assert ttl(orphan) == -1


@pytest.mark.parametrize(
    ("payloads", "message"),
    [
        ({"a": b"1", "a/b": b"2"}, "Unsafe payload path: a (a file, and a directory of other paths)"),
        ({"a": b"1", "./a": b"2"}, "Unsafe payload path: a (the same file as ./a)"),
        ({"d/": b"1"}, "Unsafe payload path: d/ (a directory, not a file)"),
        ({"line\nbreak": b"1"}, 'Unsafe payload path: "line\\nbreak" (holds a control character)'),
    ],
    ids=["file-and-directory", "same-file", "directory", "newline"],
)
def test_a_worker_refuses_a_set_of_paths_it_could_not_write_as_one_before_writing_any(
    tmp_path: Path, payloads: dict[str, bytes], message: str
) -> None:
    """Written one by one, the second path would fail half way, or overwrite the first."""
    with pytest.raises(UnsafePayloadPathError) as caught:
        materialise(payloads, tmp_path / "bundle")

    assert caught.value.message == message
    assert list(tmp_path.iterdir()) == []
