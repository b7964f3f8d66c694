"""One key's records read from Redis by reads alone, for a plan (planning.py) and an export (mn_deploy/traces.py).

The store's own lists heal indexes as they go (a pointer or an id without its record is purged), which is a write;
a plan must change nothing, and an export may be read by a user who can write nothing, so this reads the same keys
(keys.py) with GET, MGET, SMEMBERS and HGETALL only and decodes them with the store's codec. What does not decode
is left out, as the store's lists leave it out, and named.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TypeVar, cast

import redis

from backends.planning import KeyState, integer_value
from backends.redis.client import require_decoded
from backends.redis.codec import CorruptRecordError, decode_deployment, decode_version
from backends.redis.keys import Keys, namespace_from_env
from mn_deploy_core.limits import parse_json
from mn_deploy_core.records import (
    DeploymentRecord,
    InstanceRecord,
    VersionRecord,
    deployment_number,
    version_order,
)

T = TypeVar("T")


def read_key_state(client: redis.Redis, key: str, namespace: str | None = None) -> tuple[KeyState, list[str]]:
    """`key`'s deployments, versions and live instances, and its last numbers; with a line for each record left
    out because it does not decode."""
    require_decoded(client)
    keys = Keys(namespace or namespace_from_env())
    skipped: list[str] = []
    ids = _members(client, keys.key_deployments(key))
    names = _members(client, keys.versions(key))
    deployments = _deployments(client, keys, key, ids, skipped)
    versions = _versions(client, keys, key, names, skipped)
    live = cast(dict[str, str], client.hgetall(keys.live_instances))
    instances = [i for i in (_instance(n, raw, skipped) for n, raw in sorted(live.items())) if i is not None]
    counters = _values(client, [keys.last_number, keys.last_version(key)])
    state = KeyState(
        key=key,
        deployments=tuple(deployments),
        versions=tuple(versions),
        instances=tuple(i for i in instances if i.deployment_key == key),
        last_number=max([integer_value(counters[0]), *(deployment_number(i) for i in ids)]),
        last_version=max([integer_value(counters[1]), *(integer_value(n) for n in names)]),
    )
    return state, skipped


def key_deployments(client: redis.Redis, keys: Keys, key: str, skipped: list[str]) -> list[DeploymentRecord]:
    """The key's deployment records by id, those that decode (the others named in `skipped`)."""
    return _deployments(client, keys, key, _members(client, keys.key_deployments(key)), skipped)


def key_versions(client: redis.Redis, keys: Keys, key: str, skipped: list[str]) -> list[VersionRecord]:
    """The key's version records in version order (as the store lists them), those that decode."""
    return _versions(client, keys, key, _members(client, keys.versions(key)), skipped)


def _members(client: redis.Redis, index: str) -> list[str]:
    return sorted(cast(set[str], client.smembers(index)))


def _deployments(
    client: redis.Redis, keys: Keys, key: str, ids: list[str], skipped: list[str]
) -> list[DeploymentRecord]:
    return [
        record
        for deployment_id, raw in zip(ids, _values(client, [keys.deployment(i) for i in ids]), strict=True)
        if (record := _deployment(deployment_id, raw, key, skipped)) is not None
    ]


def _versions(client: redis.Redis, keys: Keys, key: str, names: list[str], skipped: list[str]) -> list[VersionRecord]:
    ordered = sorted(names, key=version_order)
    return [
        version
        for name, raw in zip(ordered, _values(client, [keys.version(key, n) for n in ordered]), strict=True)
        if (version := _version(key, name, raw, skipped)) is not None
    ]


def _values(client: redis.Redis, names: list[str]) -> list[str | None]:
    return cast(list[str | None], client.mget(names)) if names else []


def _deployment(deployment_id: str, raw: str | None, key: str, skipped: list[str]) -> DeploymentRecord | None:
    record = _decoded(f"deployment {deployment_id}", raw, lambda text: decode_deployment(deployment_id, text), skipped)
    return record if record is not None and record.deployment_key == key else None


def _version(key: str, version: str, raw: str | None, skipped: list[str]) -> VersionRecord | None:
    return _decoded(f"version {key}@{version}", raw, lambda text: decode_version(key, version, text), skipped)


def _instance(instance_id: str, raw: str, skipped: list[str]) -> InstanceRecord | None:
    return _decoded(f"instance {instance_id}", raw, lambda text: InstanceRecord.from_json(json.loads(text)), skipped)


def _decoded(what: str, raw: str | None, decode: Callable[[str], T], skipped: list[str]) -> T | None:
    """`raw` decoded, or None: when it is missing (an index entry whose record is gone: the store's reads purge it,
    a plan leaves it), or does not decode (named in `skipped`). It is first read as the core reads JSON, so text
    nested too deep or holding NaN is refused in a line rather than raised."""
    if raw is None:
        return None
    try:
        parse_json(raw)
        return decode(raw)
    except CorruptRecordError as error:
        skipped.append(error.message)
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        skipped.append(f"{what} is corrupt: {error}")
    return None
