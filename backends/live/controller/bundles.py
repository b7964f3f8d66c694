"""Where the controller keeps payload bundles: the port, and an in-memory store for tests and one process.

The core keeps a bundle's fingerprint with the version (`manifest_ref.bundle_fingerprint`) and copies it to a
rollback or an auto-revert, so a store only has to keep for good a bundle that a version references (`persist`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from backends.protocol.bundles import bundle_fingerprint


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
