"""The core's Registry on Redis: service instances with their deployment fields and a heartbeat TTL.

An instance is one hash holding the four `deployment_*` fields, `agent_id`, `job_id`, `passing` and a
`service:<name>` field per service it registered; it expires unless registered again or `heartbeat`ed.
The controller registers; the worker running the instance renews it (`heartbeat`) while the process runs, and
adds what only it knows: `node`, `host` and, when the instance serves on one, `port` (see `ENDPOINT_FIELDS`).
Indexes by service name and by deployment key are sets that lookups and promotions clean as they go.
Who a lookup returns is decided by `mn_deploy_core.discovery.visible`, the same rule every registry uses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import redis

from backends.redis import scripts
from backends.redis.client import require_decoded
from backends.redis.fencing import Fence
from backends.redis.keys import Keys, namespace_from_env
from backends.redis.transaction import Transaction
from mn_deploy_core.discovery import visible
from mn_deploy_core.ports import ServiceInstance

DEFAULT_TTL_MS = 30_000
# Written by the worker that runs the instance, not by the controller: its node, the node's host name and the
# port the instance serves on.
ENDPOINT_FIELDS = ("node", "host", "port")

Entry = dict[str, str]


class RedisRegistry:
    """Discovery state shared by the controller, agent workers and the API server."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        namespace: str | None = None,
        ttl_ms: int = DEFAULT_TTL_MS,
        transaction: Transaction | None = None,
    ) -> None:
        """`transaction`: the controller's, so that discovery changes go out with the decision that made them;
        without one each change is sent at once."""
        if ttl_ms <= 0:
            raise ValueError("ttl_ms must be positive")
        require_decoded(client)
        self._client = client
        self._keys = Keys(namespace or namespace_from_env())
        self._ttl_ms = ttl_ms
        self._transaction = transaction or Transaction(
            client, Fence(self._keys.controller_lease, None), autocommit=True
        )
        self._register = scripts.bind(client, "register")
        self._deregister = scripts.bind(client, "deregister")
        self._set_passing = scripts.bind(client, "set_passing")
        self._promote = scripts.bind(client, "promote")
        self._lookup = scripts.bind(client, "lookup")
        self._renew = scripts.bind(client, "renew")

    def register(self, service: ServiceInstance) -> None:
        """Add or replace one service of an instance and refresh the instance's TTL."""
        k = self._keys
        fields = {
            "agent_id": service.agent_id,
            "job_id": service.job_id,
            "deployment_id": service.deployment_id,
            "deployment_version": service.deployment_version,
            "deployment_role": service.deployment_role,
            "passing": "1" if service.passing else "0",
        }
        self._transaction.script(
            self._register,
            [k.instance(service.instance_id), k.service(service.name), k.service_key(service.deployment_key)],
            [
                service.instance_id,
                self._ttl_ms,
                k.prefix,
                service.name,
                service.deployment_key,
                *(x for pair in fields.items() for x in pair),
            ],
            fenced=False,
        )

    def heartbeat(self, instance_id: str, fields: Mapping[str, str] | None = None) -> bool:
        """Keep an instance discoverable for another TTL; False means it expired (or was deregistered) and must
        register again. `fields` are set on the instance on the way (an empty value removes the field); an
        instance that is gone stays gone."""
        key = self._keys.instance(instance_id)
        if not fields:
            return bool(self._client.pexpire(key, self._ttl_ms))
        return bool(self._renew([key], [self._ttl_ms, *(x for pair in fields.items() for x in pair)]))

    def deregister(self, instance_id: str) -> None:
        self._transaction.script(
            self._deregister, [self._keys.instance(instance_id)], [instance_id, self._keys.prefix], fenced=False
        )

    def set_passing(self, instance_id: str, passing: bool) -> None:
        self._transaction.script(
            self._set_passing, [self._keys.instance(instance_id)], ["1" if passing else "0"], fenced=False
        )

    def promote(self, key: str, version: str) -> None:
        """Every instance of `key` at `version` becomes primary, in one script."""
        self._transaction.script(
            self._promote, [self._keys.service_key(key)], [self._keys.prefix, key, version], fenced=False
        )

    def lookup(
        self,
        name: str,
        *,
        include_candidates: bool = False,
        role: str | None = None,
        passing_only: bool = True,
    ) -> list[ServiceInstance]:
        """Instances serving `name` that the discovery rule lets through, by instance id."""
        found = (service_of(entry) for entry in self.entries(name))
        return [
            s for s in found if visible(s, include_candidates=include_candidates, role=role, passing_only=passing_only)
        ]

    def entries(self, name: str) -> list[Entry]:
        """Every live instance registered under `name`, none filtered out, by instance id: each as all the
        fields of its hash (the worker's `node`, `host`, `port` among them once it renewed the entry) with
        `name` and `instance_id`, its `service:*` markers left out."""
        flat = self._lookup([self._keys.service(name)], [self._keys.prefix, name])
        found = [_entry(name, instance_id, dict(zip(pairs[::2], pairs[1::2], strict=True)))
                 for instance_id, pairs in zip(flat[::2], flat[1::2], strict=True)]  # fmt: skip
        return sorted(found, key=lambda e: e["instance_id"])

    def all_entries(self, key: str | None = None) -> list[Entry]:
        """The entries of every service of deployment key `key`, or of every key: one per instance and service
        name, by name then instance id. Read as they are, not in one snapshot: an instance that expires meanwhile
        is simply left out."""
        if key is None:
            pattern = _glob_escape(self._keys.instance("")) + "*"
            hash_keys = list(self._client.scan_iter(match=pattern, count=500))
            prefix = len(self._keys.instance(""))
            ids = [k[prefix:] for k in hash_keys]
        else:
            ids = sorted(self._client.smembers(self._keys.service_key(key)))
            hash_keys = [self._keys.instance(i) for i in ids]
        pipe = self._client.pipeline(transaction=False)
        for hash_key in hash_keys:
            pipe.hgetall(hash_key)
        found = []
        for instance_id, fields in zip(ids, pipe.execute(), strict=True):
            if not fields or (key is not None and fields.get("deployment_key") != key):
                continue  # expired, or moved to another key
            for field in fields:
                if field.startswith("service:"):
                    found.append(_entry(field.removeprefix("service:"), instance_id, fields))
        return sorted(found, key=lambda e: (e["name"], e["instance_id"]))


def discoverable(entries: Iterable[Entry], *, passing_only: bool = True) -> list[Entry]:
    """The entries a normal lookup returns (`discovery.visible`): primaries, and only passing ones unless
    `passing_only` is off. Never a canary or candidate: both `mn-deploy service` and the ClusterService answer
    with this, so the CLI and a remote caller see the same instances."""
    return [e for e in entries if visible(service_of(e), passing_only=passing_only)]


def entry_json(entry: Mapping[str, str]) -> dict[str, Any]:
    """An entry as JSON values: `passing` a boolean, `port` a number, and null for what the worker has not
    written (yet)."""
    port = entry.get("port", "")
    return {
        "name": entry["name"],
        "instance_id": entry["instance_id"],
        "agent_id": entry.get("agent_id", ""),
        "job_id": entry.get("job_id", ""),
        "deployment_id": entry.get("deployment_id", ""),
        "deployment_key": entry.get("deployment_key", ""),
        "deployment_version": entry.get("deployment_version", ""),
        "deployment_role": entry.get("deployment_role", ""),
        "passing": entry.get("passing") == "1",
        "node": entry.get("node") or None,
        "host": entry.get("host") or None,
        "port": int(port) if port.isdigit() else None,
    }


def service_of(entry: Mapping[str, str]) -> ServiceInstance:
    """The core's view of an entry (without the worker's fields)."""
    return ServiceInstance(
        name=entry["name"],
        instance_id=entry["instance_id"],
        agent_id=entry.get("agent_id", ""),
        job_id=entry.get("job_id", ""),
        deployment_id=entry.get("deployment_id", ""),
        deployment_key=entry.get("deployment_key", ""),
        deployment_version=entry.get("deployment_version", ""),
        deployment_role=entry.get("deployment_role", ""),
        passing=entry.get("passing") == "1",
    )


def _entry(name: str, instance_id: str, fields: Mapping[str, str]) -> Entry:
    kept = {k: v for k, v in fields.items() if not k.startswith("service:")}
    return {**kept, "name": name, "instance_id": instance_id}


def _glob_escape(text: str) -> str:
    """`text` matched literally by a SCAN pattern."""
    return re.sub(r"([\\*?\[\]])", r"\\\1", text)
