"""Payload bundles: the payload files of one deploy (POSIX relative path -> bytes), stored once under the sha256
fingerprint of their canonical form (reference §9, §13 `bundle:<fingerprint>`).

The core keeps the fingerprint with the version (`manifest_ref.bundle_fingerprint`) and copies it to a rollback
or an auto-revert, so the store only has to keep a bundle that a version references for good (`persist`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath
from typing import Protocol

from mn_deploy_core.errors import DeploymentError
from mn_deploy_core.manifest import digest


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
    """Bundles by fingerprint."""

    def put(self, payloads: Mapping[str, bytes]) -> str:
        """Store `payloads` (idempotent) and return their fingerprint."""
        ...

    def get(self, fingerprint: str) -> dict[str, bytes] | None: ...

    def persist(self, fingerprint: str) -> None:
        """Keep the bundle for good: a version references it, and a rollback may redeploy it any time."""
        ...


class MemoryBundleStore:
    """Bundles in dictionaries, for tests and a single-process controller."""

    def __init__(self) -> None:
        self._bundles: dict[str, dict[str, bytes]] = {}

    def put(self, payloads: Mapping[str, bytes]) -> str:
        fingerprint = bundle_fingerprint(payloads)
        self._bundles.setdefault(fingerprint, dict(payloads))
        return fingerprint

    def get(self, fingerprint: str) -> dict[str, bytes] | None:
        bundle = self._bundles.get(fingerprint)
        return dict(bundle) if bundle is not None else None

    def persist(self, fingerprint: str) -> None:
        """Nothing to do: bundles in memory never expire."""
