"""The core's Runtime on Redis: placements become desired assignments of worker nodes, facts come back on a stream.

Workers register a node by renewing its heartbeat key (`node_ttl_ms`, which this runtime writes for them to
use). `place` picks the live node with the fewest assigned instances and writes the placement into that node's
desired hash, with an order on its assignments stream; while no node is live it waits in `unassigned`.

Facts are read through the consumer group `controller`: an entry stays pending until `ack`, and a new runtime
(the controller restarted) reads its predecessor's pending entries before new ones, so no fact is lost.
An acknowledged entry is deleted, so the stream holds only what the controller has not taken in yet.

With an order key every placement is signed (backends/protocol/signing.py): for its node when assigned, for no
node while it waits in `unassigned`. A waiting placement that does not verify was not written by a controller
with this key: it is forgotten and reported failed rather than signed for a node.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence

import redis

from backends.protocol import signing, wire
from backends.redis import scripts
from backends.redis.client import require_decoded
from backends.redis.fencing import Fence
from backends.redis.keys import Keys, namespace_from_env
from backends.redis.transaction import Transaction
from mn_deploy_core.ports import Fact, FactKind, Placement

GROUP = "controller"
# One consumer name for every term: a new controller inherits its predecessor's pending entries as its own.
CONSUMER = "controller"
BATCH = 1000

log = logging.getLogger(__name__)


class RedisRuntime:
    """Places and stops instances on worker nodes; every call returns after a few Redis round trips."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        namespace: str | None = None,
        node_ttl_ms: int = wire.DEFAULT_NODE_TTL_MS,
        fence: str | None = None,
        transaction: Transaction | None = None,
        order_key: signing.OrderKey | None = None,
    ) -> None:
        """`fence`: the lease value of the controller term placing through this runtime (None: unfenced), so a
        leader that lost its lease cannot order workers about (FencedError). `transaction`: the one the
        controller's store commits, so that orders go out with the decision that gave them (its fence is then
        the runtime's, and `fence` is not used); without one each order is sent at once. `order_key`: the key
        orders are signed with (None: they go unsigned, for workers run with `--insecure-orders`)."""
        if node_ttl_ms < 1:
            raise ValueError("node_ttl_ms must be positive")
        require_decoded(client)
        self._client = client
        self._keys = Keys(namespace or namespace_from_env())
        self._order_key = order_key
        self._transaction = transaction or Transaction(
            client, Fence(self._keys.controller_lease, fence), autocommit=True
        )
        self._planned: dict[str, str] = {}  # instance -> node, for orders not committed yet
        self._assign_script = scripts.bind_fenced(client, "assign")
        self._unassign = scripts.bind_fenced(client, "unassign")
        self._park = scripts.bind_fenced(client, "park")
        self._expire = scripts.bind(client, "expire_nodes")
        self._max_block_ms = wire.max_block_ms(client)
        self._backlog_cursor: str | None = "0"  # pending entries first; None once they are read
        client.set(self._keys.node_ttl, node_ttl_ms)
        self._create_group()

    # ---- the Runtime port ----------------------------------------------------------------------

    def place(self, placement: Placement) -> None:
        """Assign to the least-loaded live node (ties by name; orders of this decision not committed yet count),
        or keep unassigned until a node registers."""
        loads = self._live_loads()
        for node in self._planned.values():
            if node in loads:
                loads[node] += 1
        data = wire.encode_placement(placement)
        if not loads:
            waiting = self._signed(signing.UNASSIGNED, data)
            self._transaction.script(self._park, [self._keys.unassigned], [placement.instance_id, waiting])
            return
        node = min(loads, key=lambda n: (loads[n], n))
        self._assign(node, placement.instance_id, data)
        if not self._transaction.pending:  # sent at once (autocommit): nothing is planned
            return
        if not self._planned:
            self._transaction.when_ended(self._planned.clear)
        self._planned[placement.instance_id] = node

    def stop(self, instance_id: str) -> None:
        """Drop it from its node's desired state and order the worker to stop it (or forget it if unassigned)."""
        node = self._planned.pop(instance_id, None) or self._client.hget(self._keys.assigned, instance_id)
        self._stop_on(instance_id, None if node is None else str(node))

    # ---- for the daemon ------------------------------------------------------------------------

    def read_facts(self, block_ms: int) -> list[tuple[str, Fact]]:
        """Facts not yet acknowledged: a previous controller's pending ones first, then new ones, waiting up to
        `block_ms` (capped below the client's socket timeout, so a long wait returns early and empty)."""
        if self._backlog_cursor is not None:
            entries = self._read(self._backlog_cursor, None)
            if entries:
                self._backlog_cursor = entries[-1][0]
                return self._decoded(entries)
            self._backlog_cursor = None
        block = None if block_ms <= 0 else block_ms  # BLOCK 0 would wait forever
        if block is not None and self._max_block_ms is not None:
            block = min(block, self._max_block_ms)
        return self._decoded(self._read(">", block))

    def ack(self, entry_ids: Sequence[str]) -> None:
        """The controller has taken these facts in: they leave the group's pending list and the stream."""
        if not entry_ids:
            return
        pipe = self._client.pipeline(transaction=True)
        pipe.xack(self._keys.facts, GROUP, *entry_ids)
        pipe.xdel(self._keys.facts, *entry_ids)
        pipe.execute()

    def expire_nodes(self) -> list[Fact]:
        """Housekeeping to run every so often: drop nodes whose heartbeat expired, answering FAILED for each
        instance they had (the core replaces them as its reschedule rules say), then assign unassigned
        placements to live nodes."""
        dropped, lost = self._expire([self._keys.nodes, self._keys.assigned], [self._keys.node_prefix])
        if dropped:
            log.warning("lost node(s) %s: their %d instance(s) are reported failed", ", ".join(dropped), len(lost))
        refused = self.assign_pending()
        return [Fact(str(instance_id), FactKind.FAILED) for instance_id in [*lost, *refused]]

    def assign_pending(self) -> list[str]:
        """Assign placements made while no node was live; the ids of waiting placements this controller's key
        did not sign, forgotten instead (the caller reports them failed)."""
        unassigned = self._client.hgetall(self._keys.unassigned)
        loads = self._live_loads() if unassigned else {}
        if not loads:
            return []
        refused = []
        for instance_id, waiting in sorted(unassigned.items()):
            try:
                data = self._verified(waiting)
            except signing.BadOrder as error:
                log.warning("refused waiting placement %s: %s; reported failed", instance_id, error)
                self._transaction.script(self._park, [self._keys.unassigned], [instance_id, ""])
                refused.append(instance_id)
                continue
            node = min(loads, key=lambda n: (loads[n], n))
            self._assign(node, instance_id, data)
            loads[node] += 1
        self._transaction.commit()
        return refused

    def keep_only(self, instance_ids: Collection[str]) -> list[str]:
        """After a takeover: stop whatever a node is told to run, or waits for a node, that is none of these
        instances (no controller record names it, so nobody would ever stop it); the ids stopped."""
        wanted = set(instance_ids)
        strays: dict[str, str | None] = dict.fromkeys(set(self._client.hkeys(self._keys.unassigned)) - wanted)
        strays |= {i: n for i, n in self._client.hgetall(self._keys.assigned).items() if i not in wanted}
        for node in sorted(str(n) for n in self._client.smembers(self._keys.nodes)):
            strays |= dict.fromkeys(set(self._client.hkeys(self._keys.node_desired(node))) - wanted, node)
        for instance_id, node in sorted(strays.items()):
            self._stop_on(instance_id, node)
        self._transaction.commit()
        if strays:
            log.warning("stopped %d instance(s) no record names: %s", len(strays), ", ".join(sorted(strays)))
        return sorted(strays)

    def request_resync(self) -> None:
        """Ask every worker to report the current facts of its live instances again (after `Controller.restore`)."""
        pipe = self._client.pipeline(transaction=False)
        for node in self._client.smembers(self._keys.nodes):
            self._order(pipe, str(node), {"op": wire.RESYNC})
        pipe.execute()

    # ---- inside --------------------------------------------------------------------------------

    def _live_loads(self) -> dict[str, int]:
        """Registered nodes whose heartbeat is alive, with the number of instances assigned to each."""
        nodes = sorted(str(n) for n in self._client.smembers(self._keys.nodes))
        pipe = self._client.pipeline(transaction=False)
        for node in nodes:
            pipe.exists(self._keys.node_heartbeat(node))
            pipe.hlen(self._keys.node_desired(node))
        replies = pipe.execute()
        return {node: int(replies[2 * i + 1]) for i, node in enumerate(nodes) if replies[2 * i]}

    def _stop_on(self, instance_id: str, node: str | None) -> None:
        """Order `node` to stop the instance and forget it there; without a node, forget it as unassigned."""
        if node is None:
            self._transaction.script(self._park, [self._keys.unassigned], [instance_id, ""])
            return
        keys = [self._keys.node_desired(node), self._keys.assigned, self._keys.node_assignments(node)]
        self._transaction.script(self._unassign, keys, [instance_id, wire.ASSIGNMENTS_MAXLEN, wire.STOP])

    def _assign(self, node: str, instance_id: str, data: str) -> None:
        """`data`: the placement's text, signed here for `node`."""
        k = self._keys
        keys = [k.node_desired(node), k.assigned, k.unassigned, k.node_assignments(node)]
        order = self._signed(node, data)
        self._transaction.script(
            self._assign_script, keys, [instance_id, node, order, wire.ASSIGNMENTS_MAXLEN, wire.PLACE]
        )

    def _signed(self, node: str, data: str) -> str:
        return data if self._order_key is None else self._order_key.sign(self._keys.namespace, node, data)

    def _verified(self, waiting: str) -> str:
        """A waiting placement's text, checked against the key it was parked with; BadOrder if it does not verify."""
        if self._order_key is None:
            return signing.unverified(waiting)
        return self._order_key.verify(self._keys.namespace, signing.UNASSIGNED, waiting)

    def _order(self, pipe: redis.client.Pipeline, node: str, fields: dict[str, str]) -> None:
        pipe.xadd(self._keys.node_assignments(node), fields, maxlen=wire.ASSIGNMENTS_MAXLEN, approximate=True)

    def _create_group(self) -> None:
        """From the stream's start, so facts written before any controller ran are read too."""
        try:
            self._client.xgroup_create(self._keys.facts, GROUP, id="0", mkstream=True)
        except redis.ResponseError as error:
            if not str(error).startswith("BUSYGROUP"):
                raise

    def _read(self, cursor: str, block: int | None) -> list[tuple[str, dict[str, str] | None]]:
        streams = {self._keys.facts: cursor}
        try:
            reply = self._client.xreadgroup(GROUP, CONSUMER, streams, count=BATCH, block=block)
        except redis.ResponseError as error:
            if not str(error).startswith("NOGROUP"):
                raise
            self._create_group()  # the server lost its data (restarted without persistence)
            reply = self._client.xreadgroup(GROUP, CONSUMER, streams, count=BATCH, block=block)
        return list(reply[0][1]) if reply else []

    def _decoded(self, entries: list[tuple[str, dict[str, str] | None]]) -> list[tuple[str, Fact]]:
        """Entries no worker of ours wrote are logged and acknowledged, so they cannot come back forever."""
        facts: list[tuple[str, Fact]] = []
        foreign: list[str] = []
        for entry_id, fields in entries:
            try:
                facts.append((entry_id, wire.decode_fact(fields or {})))
            except (KeyError, ValueError):
                log.warning("skipping facts stream entry %s: not a fact (%r)", entry_id, fields)
                foreign.append(entry_id)
        self.ack(foreign)
        return facts
