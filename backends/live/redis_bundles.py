"""The BundleStore on Redis: `bundle:<fingerprint>` as MirrorNeuron keeps it (reference §13), plus bindings.

A bundle is written with a TTL (7 days by default, as MirrorNeuron) so one nobody deployed, because the
deploy was refused after the upload, goes away by itself. Binding it to a version removes the TTL: a bundle
a version runs is referenced and must outlive the archive window, or a later rollback could not redeploy it
(the reference's quirk §16.6, fixed). Replies are decoded to str, so file contents are stored base64 in JSON.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping

import redis

from backends.live.bundles import bundle_fingerprint
from backends.redis.client import require_decoded
from backends.redis.keys import Keys, namespace_from_env

DEFAULT_TTL_S = 7 * 24 * 3600


class RedisBundleStore:
    """Bundles and their version bindings in one Redis database, under the MirrorNeuron namespace."""

    def __init__(self, client: redis.Redis, *, namespace: str | None = None, ttl_s: int = DEFAULT_TTL_S) -> None:
        require_decoded(client)
        self._client = client
        self._keys = Keys(namespace or namespace_from_env())
        self._ttl_s = ttl_s

    def put(self, payloads: Mapping[str, bytes]) -> str:
        fingerprint = bundle_fingerprint(payloads)
        encoded = {path: base64.b64encode(data).decode("ascii") for path, data in sorted(payloads.items())}
        # NX keeps the TTL of a bundle that is already there, and a bound (persisted) one stays persisted
        self._client.set(self._bundle(fingerprint), json.dumps(encoded), ex=self._ttl_s, nx=True)
        return fingerprint

    def get(self, fingerprint: str) -> dict[str, bytes] | None:
        raw = self._client.get(self._bundle(fingerprint))
        if raw is None:
            return None
        return {path: base64.b64decode(text) for path, text in json.loads(str(raw)).items()}

    def bind(self, key: str, version: str, fingerprint: str) -> None:
        pipe = self._client.pipeline(transaction=True)
        pipe.hset(self._bindings(key), version, fingerprint)
        pipe.persist(self._bundle(fingerprint))
        pipe.execute()

    def bound(self, key: str, version: str) -> str | None:
        fingerprint = self._client.hget(self._bindings(key), version)
        return str(fingerprint) if fingerprint is not None else None

    def _bundle(self, fingerprint: str) -> str:
        return f"{self._keys.prefix}bundle:{fingerprint}"

    def _bindings(self, key: str) -> str:
        return f"{self._keys.prefix}deployment:key:{key}:bundles"
