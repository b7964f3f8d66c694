"""The BundleStore on Redis: `bundle:<fingerprint>` as MirrorNeuron keeps it (reference §13).

A bundle is written with a TTL (7 days by default, as MirrorNeuron) so one nobody deployed, because the
deploy was refused after the upload, goes away by itself. Once a version references it, `persist` removes the
TTL: the bundle must outlive the archive window, or a later rollback could not redeploy it (the reference's
quirk §16.6, fixed). Replies are decoded to str, so file contents are stored base64 in JSON.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Collection, Mapping

import redis

from backends.protocol.bundles import bundle_fingerprint
from backends.redis.client import require_decoded
from backends.redis.keys import Keys, namespace_from_env

DEFAULT_TTL_S = 7 * 24 * 3600


class RedisBundleStore:
    """Bundles in one Redis database, under the MirrorNeuron namespace."""

    def __init__(self, client: redis.Redis, *, namespace: str | None = None, ttl_s: int = DEFAULT_TTL_S) -> None:
        require_decoded(client)
        self._client = client
        self._keys = Keys(namespace or namespace_from_env())
        self._ttl_s = ttl_s

    def put(self, payloads: Mapping[str, bytes]) -> str:
        fingerprint = bundle_fingerprint(payloads)
        encoded = {path: base64.b64encode(data).decode("ascii") for path, data in sorted(payloads.items())}
        # An upload restarts the TTL of a bundle already there (its deploy is about to reference it); GT leaves
        # a persisted bundle, which counts as never expiring, persisted.
        pipe = self._client.pipeline(transaction=True)
        pipe.set(self._bundle(fingerprint), json.dumps(encoded), ex=self._ttl_s, nx=True)
        pipe.expire(self._bundle(fingerprint), self._ttl_s, gt=True)
        pipe.execute()
        return fingerprint

    def get(self, fingerprint: str) -> dict[str, bytes] | None:
        raw = self._client.get(self._bundle(fingerprint))
        if raw is None:
            return None
        return {path: base64.b64decode(text) for path, text in json.loads(str(raw)).items()}

    def persist(self, fingerprint: str) -> None:
        self._client.persist(self._bundle(fingerprint))

    def release_unreferenced(self, referenced: Collection[str]) -> list[str]:
        """Retention: a kept bundle no version references any more (retention removed its versions) gets the
        upload TTL back, so it goes unless a deploy references it again meanwhile (which keeps it again). Not
        deleted at once: a deploy may have uploaded it and not be applied yet. The fingerprints released."""
        prefix = self._bundle("")
        kept = [str(name) for name in self._client.scan_iter(match=f"{prefix}*", count=1000)]
        unreferenced = sorted(name for name in kept if name[len(prefix) :] not in referenced)
        released = []
        for name in unreferenced:
            if self._client.expire(name, self._ttl_s, nx=True):  # NX: only one without a TTL, a kept one
                released.append(name[len(prefix) :])
        return released

    def _bundle(self, fingerprint: str) -> str:
        return f"{self._keys.prefix}bundle:{fingerprint}"
