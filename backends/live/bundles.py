"""Payload bundles, kept with the versions that ran them so a rollback or an auto-revert can redeploy them.

A bundle is the payload files of one deploy (POSIX relative path -> bytes), stored once under the sha256
fingerprint of its canonical form (reference §9, §13 `bundle:<fingerprint>`). The core's VersionRecord has
`manifest_ref` but `Controller.deploy` cannot set it, so the store also binds `(key, version)` to the
fingerprint; a version made by rollback or auto-revert has no binding of its own and inherits the one of
the version it copied (`resolve_fingerprint`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import PurePosixPath
from typing import Protocol

from mn_deploy_core.errors import DeploymentError
from mn_deploy_core.manifest import digest
from mn_deploy_core.records import VersionRecord


class UnsafePayloadPathError(DeploymentError):
    """A payload key that could escape the bundle directory when a worker writes it out."""

    def __init__(self, path: str) -> None:
        super().__init__(f"Unsafe payload path: {path}")
        self.path = path


def check_payload_paths(paths: Iterable[str]) -> None:
    """The reference's rule: a POSIX relative path, not empty, not absolute, no `..` part."""
    for path in sorted(paths):
        if path in ("", ".") or PurePosixPath(path).is_absolute() or ".." in PurePosixPath(path).parts:
            raise UnsafePayloadPathError(path)


def bundle_fingerprint(payloads: Mapping[str, bytes]) -> str:
    """sha256 of the canonical JSON of {path: sha256(content)}: equal file sets share one bundle."""
    return digest({path: hashlib.sha256(data).hexdigest() for path, data in payloads.items()})


class BundleStore(Protocol):
    """Bundles by fingerprint, and which fingerprint each version of a key was deployed with."""

    def put(self, payloads: Mapping[str, bytes]) -> str:
        """Store `payloads` (idempotent) and return their fingerprint."""
        ...

    def get(self, fingerprint: str) -> dict[str, bytes] | None: ...

    def bind(self, key: str, version: str, fingerprint: str) -> None:
        """Record that `version` of `key` runs the bundle; a bound bundle is kept for good."""
        ...

    def bound(self, key: str, version: str) -> str | None: ...


class MemoryBundleStore:
    """Bundles in dictionaries, for tests and a single-process controller."""

    def __init__(self) -> None:
        self._bundles: dict[str, dict[str, bytes]] = {}
        self._bindings: dict[tuple[str, str], str] = {}

    def put(self, payloads: Mapping[str, bytes]) -> str:
        fingerprint = bundle_fingerprint(payloads)
        self._bundles.setdefault(fingerprint, dict(payloads))
        return fingerprint

    def get(self, fingerprint: str) -> dict[str, bytes] | None:
        bundle = self._bundles.get(fingerprint)
        return dict(bundle) if bundle is not None else None

    def bind(self, key: str, version: str, fingerprint: str) -> None:
        self._bindings[(key, version)] = fingerprint

    def bound(self, key: str, version: str) -> str | None:
        return self._bindings.get((key, version))


def resolve_fingerprint(bundles: BundleStore, versions: Sequence[VersionRecord], version: str) -> str | None:
    """The bundle `version` runs: its own binding, else the one of the version its rollback copied."""
    by_version = {v.version: v for v in versions}
    seen: set[str] = set()
    current: str | None = version
    while current is not None and current not in seen:
        seen.add(current)
        record = by_version.get(current)
        if record is None:
            return None
        fingerprint = bundles.bound(record.deployment_key, current)
        if fingerprint is not None:
            return fingerprint
        current = (record.rollback or {}).get("to_version")
    return None
