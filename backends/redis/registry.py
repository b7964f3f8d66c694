"""The core's Registry on Redis: service instances with their deployment fields and a heartbeat TTL.

An instance is one hash holding the four `deployment_*` fields, `agent_id`, `job_id`, `passing` and a
`service:<name>` field per service it registered; it expires unless registered again or `heartbeat`ed.
Indexes by service name and by deployment key are sets that lookups and promotions clean as they go.
Who a lookup returns is decided by `mn_deploy_core.discovery.visible`, the same rule every registry uses.
"""

from __future__ import annotations

import redis

from backends.redis import scripts
from backends.redis.client import require_decoded
from backends.redis.fencing import Fence
from backends.redis.keys import Keys, namespace_from_env
from backends.redis.transaction import Transaction
from mn_deploy_core.discovery import visible
from mn_deploy_core.ports import ServiceInstance

DEFAULT_TTL_MS = 30_000


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

    def heartbeat(self, instance_id: str) -> bool:
        """Keep an instance discoverable for another TTL; False means it expired and must register again."""
        return bool(self._client.pexpire(self._keys.instance(instance_id), self._ttl_ms))

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
        flat = self._lookup([self._keys.service(name)], [self._keys.prefix, name])
        found = []
        for instance_id, pairs in zip(flat[::2], flat[1::2], strict=True):
            fields = dict(zip(pairs[::2], pairs[1::2], strict=True))
            service = ServiceInstance(
                name=name,
                instance_id=instance_id,
                agent_id=fields.get("agent_id", ""),
                job_id=fields.get("job_id", ""),
                deployment_id=fields.get("deployment_id", ""),
                deployment_key=fields.get("deployment_key", ""),
                deployment_version=fields.get("deployment_version", ""),
                deployment_role=fields.get("deployment_role", ""),
                passing=fields.get("passing") == "1",
            )
            if visible(service, include_candidates=include_candidates, role=role, passing_only=passing_only):
                found.append(service)
        return sorted(found, key=lambda s: s.instance_id)
