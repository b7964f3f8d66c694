"""The core's Store on Redis, in MirrorNeuron's key layout (reference §13; keys.py, docs/redis-layout.md).

Fixes to the reference: a save names the revision it read and fails with ConflictError when another writer
saved first; saving an older deployment does not take over `current`; versions and deployment numbers are
allocated in the decision that uses them (never reused, none skipped). Every commit is one transaction
(transaction.py) with the records, versions, numbers and instance states of one decision. Reads heal the indexes as the
reference does, and a corrupt record is logged by id and skipped by lists instead of failing them.

A store made with `fence` (the controller lease value its owner holds) checks inside every write script that
the lease still holds that value and raises FencedError otherwise, so a controller that lost its lease cannot
overwrite what its successor decides. Read-side healing is not fenced: it only removes entries whose record is
gone, which is the same whoever does it.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import logging
import socket
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis
from redis.client import Pipeline

from backends.redis import scripts
from backends.redis.client import require_decoded
from backends.redis.codec import (
    CorruptRecordError,
    decode_deployment,
    decode_event,
    decode_version,
    dumps,
    encode_deployment,
    encode_event,
    encode_version,
)
from backends.redis.fencing import Fence
from backends.redis.keys import Keys, namespace_from_env
from backends.redis.transaction import Precondition, Transaction
from mn_deploy_core.errors import ConflictError, DeploymentError
from mn_deploy_core.ports import Commit, Recordable
from mn_deploy_core.records import DeploymentRecord, Event, InstanceRecord, VersionRecord, version_order

log = logging.getLogger(__name__)
decisions = logging.getLogger("mn_deploy.decisions")
"""One line per event a stored decision wrote (deployment created or started, instance placed, verdicts,
promoted, failed, reverted, lost...), as JSON: an operator's record of what the controller decided."""

_BATCH = 1000
VERSIONS_KEPT = 100
"""Versions each key keeps (with their deployments and events) once retention runs; see `RedisStore.retain`."""


@dataclass(frozen=True, slots=True)
class SweepReport:
    """What a retention sweep purged (entries without a record) and found but kept (corrupt records)."""

    stale_deployments: tuple[str, ...]
    stale_versions: tuple[str, ...]
    corrupt_deployments: tuple[str, ...]
    corrupt_versions: tuple[str, ...]


class RedisStore:
    """Deployment, version and event records on Redis; safe to share one database with MirrorNeuron."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        namespace: str | None = None,
        node: str | None = None,
        fence: str | None = None,
        transaction: Transaction | None = None,
    ) -> None:
        """`transaction`: shared with the runtime and registry of the same controller, so that one commit carries
        a decision's orders and discovery changes with its records; its fence is then the store's, and `fence`
        is not used."""
        require_decoded(client)
        self._client = client
        self._keys = Keys(namespace or namespace_from_env())
        self._node = node or socket.gethostname()
        self._transaction = transaction or Transaction(client, Fence(self._keys.controller_lease, fence))
        self._shared = transaction is not None
        self._handed: dict[str, int] = {}  # counter -> the highest number handed to the decision in progress
        self._fence = self._transaction.fence
        self._save = scripts.bind_fenced(client, "save_deployment")
        self._save_version = scripts.bind_fenced(client, "save_version")
        self._save_instances = scripts.bind_fenced(client, "save_instances")
        self._current = scripts.bind(client, "current")
        self._read_set = scripts.bind(client, "read_set")
        self._forget = scripts.bind(client, "forget")
        self._versions_seen: dict[tuple[str, str], tuple[str, VersionRecord]] = {}

    def allocate_deployment_number(self, key: str) -> int:
        """Above `last_number` and the number of every id the key owns, so a deployment we create takes over
        `current` even from ids MirrorNeuron numbered with its own counter."""
        k = self._keys
        return self._allocate(k.last_number, k.key_deployments(key), _id_number)

    def allocate_version(self, key: str) -> str:
        """Above the key's `last_version` and every integer version it has, so versions MirrorNeuron wrote (it
        keeps no counter) are never handed out again (R1)."""
        k = self._keys
        return str(self._allocate(k.last_version(key), k.versions(key), _version_number))

    def _allocate(self, counter: str, taken: str, number_of: Callable[[str], int]) -> int:
        """The next number above `counter`, every number in the set `taken` and any this decision was handed
        already. Its counter is written with the decision that uses it, so a crash before that leaves no gap; and
        only if nobody took a number meanwhile (checked under WATCH). A store of its own writes it at once, and
        picks again when another writer was first."""
        while True:
            seen = self._client.get(counter)
            highest = max([_count(seen), *map(number_of, self._client.smembers(taken)), self._handed.get(counter, 0)])
            self._claim(counter, seen, taken, number_of, highest + 1)
            if self._shared:
                if not self._handed:
                    self._transaction.when_ended(self._handed.clear)
                self._handed[counter] = highest + 1
                return highest + 1
            try:
                self._transaction.commit()
                return highest + 1
            except NumberTakenError:
                continue

    def _claim(self, counter: str, seen: str | None, taken: str, number_of: Callable[[str], int], number: int) -> None:
        """Queue `counter` = `number`, if the counter still reads `seen` and `taken` holds nothing as high."""

        def untaken(pipe: Pipeline) -> Exception | None:
            moved = pipe.get(counter) != seen or any(number_of(m) >= number for m in pipe.smembers(taken))
            return NumberTakenError(counter) if moved else None

        self._transaction.write(lambda pipe: pipe.set(counter, number), Precondition((counter, taken), untaken))

    def save_deployment(self, record: DeploymentRecord, new_events: Sequence[Event]) -> int:
        """One record with its new events, as a commit of its own."""
        return self.commit(Commit([(record, tuple(new_events))], [], [], []))[0]

    def load_deployment(self, deployment_id: str) -> DeploymentRecord | None:
        """None when there is no record; CorruptRecordError when there is one that does not decode."""
        raw = self._client.get(self._keys.deployment(deployment_id))
        return None if raw is None else decode_deployment(deployment_id, str(raw))

    def current_deployment_id(self, key: str) -> str | None:
        k = self._keys
        found = self._current([k.current(key), k.key_deployments(key), k.deployments], [k.prefix, key])
        return str(found[0]) if found else None

    def list_deployments(
        self, key: str | None = None, status: str | None = None, *, after: str | None = None, limit: int | None = None
    ) -> list[DeploymentRecord]:
        """Sorted by id, those after `after`, at most `limit`; read in batches, so a page costs what it holds.
        Ids without a record are purged; corrupt records are logged and skipped."""
        k = self._keys
        ids = sorted(self._members(k.deployments if key is None else k.key_deployments(key)))
        records: list[DeploymentRecord] = []
        for deployment_id, raw in self._records(ids[bisect.bisect_right(ids, after) :] if after else ids):
            if raw is None:
                self._forget_deployment(deployment_id, [] if key is None else [key])
                continue
            try:
                record = decode_deployment(deployment_id, raw)
            except CorruptRecordError as exc:
                log.warning("skipping %s", exc.message)
                continue
            if (key is None or record.deployment_key == key) and (status is None or record.status == status):
                records.append(record)
                if len(records) == limit:
                    break
        return records

    def deployment_events(self, deployment_id: str) -> list[Event]:
        """The history in one XRANGE (the newest ~10,000 events; the record itself keeps only the newest 100)."""
        events = []
        entries = cast(list[tuple[str, dict[str, str]]], self._client.xrange(self._keys.events(deployment_id)))
        for _, fields in entries:
            try:
                events.append(decode_event(deployment_id, fields["event"]))
            except CorruptRecordError as exc:
                log.warning("skipping %s", exc.message)
        return events

    def commit(self, commit: Commit) -> list[int]:
        """One decision in one transaction, with whatever the runtime and registry sharing it queued: all of it
        is stored or none (transaction.py). The records' new revisions."""
        if commit.changed or commit.removed:
            self._queue_instances(commit.changed, commit.removed)
        for version in commit.versions:
            self._queue_version(version)
        revisions = [self._queue_deployment(record, events) for record, events in commit.records]
        self._transaction.commit()
        for record, events in commit.records:
            for event in events:
                decisions.info("%s", _decision_line(record, event))
        return revisions

    def save_instances(self, changed: Sequence[Recordable], removed: Sequence[str]) -> None:
        self.commit(Commit([], [], changed, removed))

    def list_instances(self) -> list[InstanceRecord]:
        raw = cast(dict[str, str], self._client.hgetall(self._keys.live_instances))
        instances = []
        for instance_id, data in sorted(raw.items()):
            try:
                instances.append(InstanceRecord.from_json(json.loads(data)))
            except (ValueError, TypeError) as exc:
                log.warning("skipping corrupt instance %s: %r", instance_id, exc)
        return instances

    def save_version(self, record: VersionRecord) -> None:
        self.commit(Commit([], [record], [], []))

    def load_version(self, key: str, version: str) -> VersionRecord | None:
        raw = self._client.get(self._keys.version(key, version))
        return None if raw is None else decode_version(key, version, str(raw))

    def list_versions(self, key: str) -> list[VersionRecord]:
        """Sorted by integer. Versions without a record are purged; corrupt ones are logged and skipped."""
        good, _, _ = self._check_versions(key)
        return sorted(good, key=lambda v: version_order(v.version))

    def sweep(self) -> SweepReport:
        """Retention (reference §13): purge index entries that have no record, keep and report corrupt ones."""
        k = self._keys
        sets = {key: self._members(k.key_deployments(key)) for key in self._scan_keys(":deployments")}
        pointed = self._scan_keys(":current")
        pointers = dict(zip(pointed, self._client.mget([k.current(key) for key in pointed]), strict=True))
        ids = self._members(k.deployments).union(*sets.values())
        ids.update(str(p) for p in pointers.values() if p)
        stale, corrupt = [], []
        for deployment_id, raw in self._records(sorted(ids)):
            if raw is None:
                keys = [key for key, members in sets.items() if deployment_id in members]
                keys += [key for key, pointer in pointers.items() if pointer == deployment_id]
                if self._forget_deployment(deployment_id, keys):
                    stale.append(deployment_id)
                continue
            try:
                decode_deployment(deployment_id, raw)
            except CorruptRecordError:
                corrupt.append(deployment_id)
        stale_versions, corrupt_versions = [], []
        for key in self._scan_keys(":versions"):
            _, gone, bad = self._check_versions(key)
            stale_versions += [f"{key}@{v}" for v in gone]
            corrupt_versions += [f"{key}@{v}" for v in bad]
        return SweepReport(tuple(stale), tuple(sorted(stale_versions)), tuple(corrupt), tuple(sorted(corrupt_versions)))

    def retain(self, keep: int = VERSIONS_KEPT) -> list[str]:
        """Retention: per key, the versions older than its newest `keep` are removed with the deployment that made
        each and that deployment's events, unless the key still needs them (its current and stable versions, a
        deployment still active). One transaction per key; what was removed, as `<key>@<version>`."""
        removed: list[str] = []
        for key in self._scan_keys(":versions"):
            try:
                removed += self._retain_key(key, keep)
            except CorruptRecordError as exc:  # kept as it is, as every read does; the sweep reports it
                log.warning("retention skips %s: %s", key, exc.message)
        return removed

    def referenced_bundles(self) -> set[str]:
        """The payload bundles every stored version ships with, by fingerprint (what bundle retention keeps)."""
        return {
            str(v.manifest_ref["bundle_fingerprint"])
            for key in self._scan_keys(":versions")
            for v in self.list_versions(key)
            if v.manifest_ref and v.manifest_ref.get("bundle_fingerprint")
        }

    def _retain_key(self, key: str, keep: int) -> list[str]:
        versions = self.list_versions(key)
        current = self.load_deployment(self.current_deployment_id(key) or "")
        needed = {current.current_version, current.stable_version} if current else set()
        removed = []
        for version in versions[: max(0, len(versions) - keep)]:
            made_by = self.load_deployment(version.deployment_id) if version.deployment_id else None
            if version.version in needed or (made_by is not None and made_by.active):
                continue
            self._transaction.write(self._forgetting(version))
            removed.append(f"{key}@{version.version}")
        self._transaction.commit()
        return removed

    def _forgetting(self, version: VersionRecord) -> Callable[[Pipeline], None]:
        """The write that removes a version, the deployment that made it, its events and their index entries."""
        k, key, deployment_id = self._keys, version.deployment_key, version.deployment_id

        def forget(pipe: Pipeline) -> None:
            pipe.delete(k.version(key, version.version), k.deployment(deployment_id), *_history(k, deployment_id))
            pipe.srem(k.versions(key), version.version)
            pipe.srem(k.deployments, deployment_id)
            pipe.srem(k.key_deployments(key), deployment_id)

        return forget

    def _queue_deployment(self, record: DeploymentRecord, new_events: Sequence[Event]) -> int:
        """The record (at its next revision) with its events, the indexes and `current`
        (save_deployment.lua), if the stored record is still at the revision it was read at."""
        k, deployment_id, expected = self._keys, record.deployment_id, record.revision
        raw = encode_deployment(record, expected + 1)
        keys = [
            k.deployment(deployment_id),
            k.deployments,
            k.current(record.deployment_key),
            k.key_deployments(record.deployment_key),
            k.events(deployment_id),
            k.status_stream,
        ]
        args = [
            deployment_id,
            record.deployment_key,
            expected,
            raw,
            hashlib.sha256(raw.encode()).hexdigest(),
            self._node,
            k.prefix,
            *(encode_event(e) for e in new_events),
        ]
        self._transaction.write(
            lambda pipe: self._fence.queue(pipe, self._save, keys, args),
            Precondition((keys[0],), lambda pipe: _revision_refusal(pipe.get(keys[0]), deployment_id, expected, raw)),
        )
        return expected + 1

    def _queue_version(self, record: VersionRecord) -> None:
        k = self._keys
        keys = [k.version(record.deployment_key, record.version), k.versions(record.deployment_key)]
        self._transaction.script(self._save_version, keys, [encode_version(record), record.version])

    def _queue_instances(self, changed: Sequence[Recordable], removed: Sequence[str]) -> None:
        """Upserts and removals of live instance records (save_instances.lua); a removed instance's last record
        goes to its deployment's lives, in the same transaction, so a trace has every instance's whole life."""
        gone = set(removed)
        pairs: list[str] = []
        ended: defaultdict[str, dict[str, str]] = defaultdict(dict)
        for instance in changed:
            record = instance.to_record()
            if instance.instance_id in gone:
                ended[record.deployment_id][record.instance_id] = dumps(record.to_json())
            else:
                pairs += [record.instance_id, dumps(record.to_json())]
        self._transaction.script(self._save_instances, [self._keys.live_instances], [len(pairs) // 2, *pairs, *removed])
        for deployment_id, lives in ended.items():
            self._transaction.write(_lives_saved(self._keys.lives(deployment_id), lives))

    def instance_lives(self, deployment_id: str) -> list[InstanceRecord]:
        """The last record of every instance of the deployment, stopped ones (its lives) and live ones, in
        placement order; corrupt ones are logged and skipped."""
        stopped = cast(dict[str, str], self._client.hgetall(self._keys.lives(deployment_id)))
        lives = []
        for instance_id, data in stopped.items():
            try:
                lives.append(InstanceRecord.from_json(json.loads(data)))
            except (ValueError, TypeError) as exc:
                log.warning("skipping corrupt life of %s: %r", instance_id, exc)
        lives += [i for i in self.list_instances() if i.deployment_id == deployment_id and i.instance_id not in stopped]
        return sorted(lives, key=lambda i: (i.placed_ms, i.instance_id))

    def _check_versions(self, key: str) -> tuple[list[VersionRecord], list[str], list[str]]:
        """The key's versions that decode, those purged for having no record, and those that are corrupt."""
        k = self._keys
        good, gone, bad = [], [], []
        for version, raw in self._members_with_records(k.versions(key), k.version_prefix(key)):
            if raw is None:
                if self._forget([k.version(key, version), k.versions(key)], [version]):
                    gone.append(version)
                continue
            try:
                good.append(self._decoded_version(key, version, raw))
            except CorruptRecordError as exc:
                log.warning("skipping %s", exc.message)
                bad.append(version)
        return good, gone, bad

    def _decoded_version(self, key: str, version: str, raw: str) -> VersionRecord:
        """Versions are written once (and once more when they turn stable) but read on every GetDeployment:
        decode each stored text once."""
        cached = self._versions_seen.get((key, version))
        if cached is not None and cached[0] == raw:
            return cached[1]
        record = decode_version(key, version, raw)
        self._versions_seen[(key, version)] = (raw, record)
        return record

    def _records(self, ids: list[str]) -> Iterator[tuple[str, str | None]]:
        """Each id with its record JSON, read in batches so a large installation is not one huge reply."""
        for start in range(0, len(ids), _BATCH):
            batch = ids[start : start + _BATCH]
            yield from zip(batch, self._client.mget([self._keys.deployment(i) for i in batch]), strict=True)

    def _members(self, index: str) -> set[str]:
        return {str(member) for member in self._client.smembers(index)}

    def _members_with_records(self, index: str, prefix: str) -> Iterator[tuple[str, str | None]]:
        flat = self._read_set([index], [prefix])
        return zip(flat[::2], flat[1::2], strict=True)

    def _forget_deployment(self, deployment_id: str, keys: Sequence[str]) -> bool:
        """Drop an id whose record is gone from `deployments`, its history and these keys' indexes."""
        k = self._keys
        index_keys = [name for key in keys for name in (k.key_deployments(key), k.current(key))]
        forgotten = self._forget(
            [k.deployment(deployment_id), k.deployments, *_history(k, deployment_id), *index_keys],
            [deployment_id],
        )
        return bool(forgotten)

    def _scan_keys(self, suffix: str) -> list[str]:
        """Deployment keys that have a `deployment:key:<k><suffix>` entry."""
        start = self._keys.key_prefix
        names = self._client.scan_iter(match=f"{start}*{suffix}", count=_BATCH)
        return sorted({str(name)[len(start) : -len(suffix)] for name in names})


def _lives_saved(key: str, lives: dict[str, str]) -> Callable[[Pipeline], None]:
    def save(pipe: Pipeline) -> None:
        pipe.hset(key, mapping=dict(lives))

    return save


def _history(keys: Keys, deployment_id: str) -> tuple[str, ...]:
    """What a deployment keeps beside its record, removed with it: its events, its inputs and its lives."""
    return keys.events(deployment_id), keys.inputs(deployment_id), keys.lives(deployment_id)


def _revision_refusal(stored: str | None, deployment_id: str, expected: int, raw: str) -> Exception | None:
    """Why a record read at revision `expected` may not be saved now, or None: another writer saved it first
    (ConflictError), or what is stored is not a record of it (never overwritten). A retry of a commit whose reply
    was lost finds its own bytes stored, which is a success (save_deployment.lua returns it)."""
    if stored is None:
        return None if expected == 0 else ConflictError(deployment_id, expected, 0)
    try:
        old = json.loads(stored)
    except ValueError:
        old = None
    if not isinstance(old, dict) or old.get("deployment_id") != deployment_id:
        return CorruptRecordError("deployment", deployment_id, "invalid existing deployment; not overwritten")
    actual = _revision(old.get("revision"))
    if actual == expected or (actual == expected + 1 and stored == raw):
        return None
    return ConflictError(deployment_id, expected, actual)


def _revision(value: Any) -> int:
    """As save_deployment.lua reads it: a number, or 0."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


class NumberTakenError(DeploymentError):
    """Another writer took a deployment number or version while a decision was using it."""

    def __init__(self, counter: str) -> None:
        super().__init__(f"another writer allocated from {counter} meanwhile; try again")


def _count(text: str | None) -> int:
    return int(text) if text and text.isascii() and text.isdigit() else 0


def _version_number(version: str) -> int:
    """An integer version's value; any other version counts as 0."""
    return _count(version)


def _id_number(deployment_id: str) -> int:
    """The number ending `dep_<safe key>_<n>`, or 0."""
    return _count(deployment_id.rsplit("_", 1)[-1])


def _decision_line(record: DeploymentRecord, event: Event) -> str:
    """`{"deployment_id", "deployment_key", "event", "t_ms", ...the event's fields}` on one line."""
    line = {"deployment_id": record.deployment_id, "deployment_key": record.deployment_key, "event": event.type}
    return json.dumps({**line, "t_ms": event.t_ms, **event.fields}, ensure_ascii=True, default=str)
