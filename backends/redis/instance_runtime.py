"""What only a worker knows of an instance's process (pid, port, state, since when, restarts), kept in Redis for
`deployment status`.

One hash per node (`Keys.node_runtime`): instance id -> one JSON document. The worker writes an instance's entry
when its process changes state (never per check), deletes it when the instance stops or completes, and gives the
hash the node's heartbeat TTL at every beat: a worker that dies takes its entries with it within the node TTL, as
the controller drops its node. The controller reads the entries of the instances it shows, finding each one's
node in the `assigned` hash (an entry does not repeat its node).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import cast

import redis

from backends.redis.client import require_decoded
from backends.redis.keys import Keys, namespace_from_env

STARTING = "starting"
RUNNING = "running"
EXITED = "exited"
FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """An instance's process as its worker sees it. `state`: starting (placed or about to restart), running,
    exited (waiting to restart) or failed (its restarts used up); `since_ms`: when it entered that state, on the
    worker's wall clock; `restarts`: how often this worker restarted it (a worker taking an instance over from
    its predecessor counts that as one, as the controller does); `pid` and `port` while it runs."""

    state: str
    since_ms: float
    restarts: int
    pid: int | None = None
    port: int | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> ProcessInfo | None:
        """None for an entry that does not read (written by another version): it is shown as unknown."""
        try:
            data = json.loads(text)
            return cls(**{k: data[k] for k in ("state", "since_ms", "restarts", "pid", "port")})
        except (ValueError, TypeError, KeyError):
            return None


class InstanceRuntime:
    """The per-node hashes of process info: written by workers, read by the controller."""

    def __init__(self, client: redis.Redis, *, namespace: str | None = None) -> None:
        require_decoded(client)
        self._client = client
        self._keys = Keys(namespace or namespace_from_env())

    def publish(self, node: str, instance_id: str, info: ProcessInfo | None, ttl_ms: int) -> None:
        """Write (or, for None, delete) one instance's entry, keeping the hash's TTL."""
        key = self._keys.node_runtime(node)
        if info is None:
            self._client.hdel(key, instance_id)
            return
        pipe = self._client.pipeline(transaction=False)
        pipe.hset(key, instance_id, info.to_json())
        pipe.pexpire(key, ttl_ms)
        pipe.execute()

    def keep_alive(self, pipe: redis.client.Pipeline, node: str, ttl_ms: int) -> None:
        """Queue the renewal of a node's hash on the pipeline of its heartbeat."""
        pipe.pexpire(self._keys.node_runtime(node), ttl_ms)

    def delete(self, node: str) -> None:
        self._client.delete(self._keys.node_runtime(node))

    def read(self, instance_ids: Iterable[str]) -> dict[str, tuple[str, ProcessInfo | None]]:
        """Each of these instances assigned to a node now: its node and the entry its worker holds, if any; two
        round trips whatever the count."""
        ids = list(instance_ids)
        if not ids:
            return {}
        nodes = cast(list[str | None], self._client.hmget(self._keys.assigned, ids))
        by_node: dict[str, list[str]] = {}
        for instance_id, node in zip(ids, nodes, strict=True):
            if node is not None:
                by_node.setdefault(node, []).append(instance_id)
        pipe = self._client.pipeline(transaction=False)
        for node, members in by_node.items():
            pipe.hmget(self._keys.node_runtime(node), members)
        found: dict[str, tuple[str, ProcessInfo | None]] = {}
        for (node, members), values in zip(by_node.items(), pipe.execute(), strict=True):
            for instance_id, text in zip(members, values, strict=True):
                found[instance_id] = (node, None if text is None else ProcessInfo.from_json(text))
        return found
