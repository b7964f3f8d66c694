"""A worker: keeps its node alive with a heartbeat and runs the instances the controller assigns to the node.

The node's desired hash is the truth; its assignments stream says what changed, in order. A worker takes up the
desired instances when it starts, then follows the stream. When it finds its heartbeat had expired, the
controller may have dropped the node (and reported its instances failed), so it reconciles with the desired
hash again: whatever is no longer desired is stopped. Facts it could not write (Redis unreachable) are made up
for by reporting every instance's current state once Redis answers again.

Discovery: the controller registers an instance's entry when it places it; while the instance's process runs,
the worker renews the entry every third of the registry TTL (`registry_ttl_ms`, the controller's 30 s unless
told otherwise), so it stays discoverable for as long as the instance lives. The first renewal of each run, on
the worker's next beat after the start, also writes `node`, `host` and `port` into the entry. Nothing renews an
instance that does not run (exited, restarting, failed, stopped, or whose worker is gone): its entry expires
within the TTL unless the controller removed it before. A renewal never brings back an entry that is gone.

What only the worker knows of each instance's process (pid, port, state and since when, restarts) is kept in
the node's runtime hash (backends/redis/instance_runtime.py) for `deployment status`: an entry is written when its
process changes state, never per check, and deleted when the instance stops or completes. Each beat gives the
hash the heartbeat's TTL, so a worker that dies takes it along within the node TTL; one that reconciles or
resyncs writes it afresh.

A batch instance that completed (R3b) leaves the node's desired hash in the same step as its `completed` fact
goes out (`lua/complete.lua`): it is done, so a worker restarted on the node before the controller noticed the
old one gone does not run it again, and a node lost later does not report it failed.

A placement runs only if its order verifies under the worker's order key (backends/protocol/signing.py): signed
by the controller for this node of this namespace, unaltered. One that does not (written into Redis by someone
else, or under another key) is refused: logged once per instance, not run, and reported failed (unless an instance
of that id runs here already: a forgery is then only logged), so the controller deals with it by its rules.

On a normal shutdown every instance is stopped (SIGTERM, SIGKILL after the grace period) and the heartbeat is
deleted, so the controller replaces the instances without waiting for the TTL. A worker killed outright takes
its agents with it (see process.py).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import redis

from backends.live.worker.logs import NodeLogs, RedisLogShipper
from backends.live.worker.supervisor import AgentUser, InstanceSupervisor, Serving
from backends.protocol import signing, wire
from backends.redis import scripts
from backends.redis.bundles import RedisBundleStore
from backends.redis.client import require_decoded
from backends.redis.instance_runtime import InstanceRuntime, ProcessInfo
from backends.redis.keys import Keys, namespace_from_env
from backends.redis.registry import DEFAULT_TTL_MS, RedisRegistry
from mn_deploy_core.ports import Fact, FactKind, Placement

# About this many facts are kept for a controller that is not reading: a bound on memory, never reached while
# one runs (it deletes what it acknowledged).
FACTS_MAXLEN = 100_000

log = logging.getLogger(__name__)


class Worker:
    """One node's worker; `run` until `stop` is set."""

    def __init__(
        self,
        client: redis.Redis,
        node: str,
        *,
        namespace: str | None = None,
        workdir: Path,
        heartbeat_ms: int = 1000,
        grace_ms: int = 5000,
        registry_ttl_ms: int = DEFAULT_TTL_MS,
        host: str | None = None,
        order_key: signing.OrderKey | None = None,
        run_as: AgentUser | None = None,
    ) -> None:
        """`registry_ttl_ms`: the TTL discovery entries are renewed with (the controller's registry TTL);
        `host`: the host name entries carry (default: this machine's); `order_key`: the key placements must be
        signed with (None: every order runs unchecked, which `agent worker` allows only with `--insecure-orders`);
        `run_as`: the user agents run as (None: the worker's)."""
        if heartbeat_ms < 1:
            raise ValueError("heartbeat_ms must be positive")
        if registry_ttl_ms < 3:
            raise ValueError("registry_ttl_ms must be at least 3")
        require_decoded(client)
        self.node = node
        self._client = client
        self._keys = Keys(namespace or namespace_from_env())
        self._bundles = RedisBundleStore(client, namespace=namespace)
        self._registry = RedisRegistry(client, namespace=self._keys.namespace, ttl_ms=registry_ttl_ms)
        self._renew_s = registry_ttl_ms / 3000
        self._host = host or socket.gethostname()
        self._renewed: dict[str, int] = {}  # instance id -> the run whose entry was renewed last
        self._heartbeat = scripts.bind(client, "node_heartbeat")
        self._runtime = InstanceRuntime(client, namespace=self._keys.namespace)
        self._node_ttl_ms = wire.DEFAULT_NODE_TTL_MS  # the heartbeat's TTL, as of the last beat
        self._complete = scripts.bind(client, "complete")
        self._workdir = workdir
        self._logs = NodeLogs(workdir / "logs", node, self._keys, RedisLogShipper(client))
        self._heartbeat_s = heartbeat_ms / 1000
        self._max_block_ms = wire.max_block_ms(client)
        self._grace_s = grace_ms / 1000
        self._identity = f"{socket.gethostname()}/{os.getpid()}"
        self._instances: dict[str, InstanceSupervisor] = {}
        self._stopping: list[InstanceSupervisor] = []
        self._facts_lost = False
        self._order_key = order_key
        self._run_as = run_as
        self._refused: set[str] = set()  # instances whose order was refused, so that each is logged once

    def run(self, stop: threading.Event) -> None:
        """Heartbeat, follow the assignments, supervise the instances; stop them all when `stop` is set."""
        self._workdir.mkdir(parents=True, exist_ok=True)
        if self._order_key is None:
            log.warning("node %s: orders are not verified: whoever can write to Redis can run commands here", self.node)
        try:
            self._beat()
            cursor = self._reconcile(adopted=True)
            next_beat = time.monotonic() + self._heartbeat_s
            next_renewal = time.monotonic()
            while not stop.is_set():
                try:
                    beat = time.monotonic() >= next_beat
                    if beat:
                        next_beat = time.monotonic() + self._heartbeat_s
                        if not self._beat():
                            log.warning("node %s: heartbeat had expired; reconciling with its assignments", self.node)
                            cursor = self._reconcile(adopted=False)
                        elif self._facts_lost:
                            self._facts_lost = False
                            self._resync()
                    due = time.monotonic() >= next_renewal
                    if due:
                        next_renewal = time.monotonic() + self._renew_s
                    if due or beat:
                        self._renew(every=due)
                    cursor = self._follow(cursor, min(next_beat, next_renewal) - time.monotonic())
                except (redis.ConnectionError, redis.TimeoutError) as error:
                    log.warning("node %s: Redis unreachable (%s); retrying", self.node, error)
                    stop.wait(self._heartbeat_s)
        finally:
            self._shutdown()

    # ---- orders --------------------------------------------------------------------------------

    def _follow(self, cursor: str, wait_s: float) -> str:
        """Apply the orders after `cursor`, waiting for them at most `wait_s`; the new cursor."""
        block = max(1, int(wait_s * 1000))
        if self._max_block_ms is not None:
            block = min(block, self._max_block_ms)
        reply = self._client.xread({self._keys.node_assignments(self.node): cursor}, count=100, block=block)
        for entry_id, fields in reply[0][1] if reply else []:
            self._apply(fields)
            cursor = entry_id
        self._stopping = [s for s in self._stopping if s.alive]
        return cursor

    def _apply(self, order: Mapping[str, str]) -> None:
        op = order.get("op")
        if op == wire.PLACE:
            self._start_order(order.get("placement", ""), adopted=False)
        elif op == wire.STOP:
            self._stop(order["instance_id"])
        elif op == wire.RESYNC:
            self._resync()
        else:
            log.warning("node %s: ignoring unknown order %r", self.node, order)

    def _reconcile(self, *, adopted: bool) -> str:
        """Run exactly the desired instances (stop the others, start the missing ones); the cursor to follow from.

        Orders up to the cursor are already in the desired hash (the controller writes both in one transaction),
        so none of them is applied again: an order to a node dropped meanwhile must not start anything.
        """
        cursor = self._last_order_id()
        desired = self._client.hgetall(self._keys.node_desired(self.node))
        self._runtime.delete(self.node)  # a predecessor's entries, or ours if it expired: written afresh below
        for instance_id in [i for i in self._instances if i not in desired]:
            self._stop(instance_id)
        for supervisor in self._instances.values():
            supervisor.announce_again()
        for instance_id, data in sorted(desired.items()):
            if instance_id not in self._instances:
                self._start_order(data, adopted=adopted, instance_id=instance_id)
        return cursor

    def _start_order(self, order: str, *, adopted: bool, instance_id: str | None = None) -> None:
        """Run the placement of an order that verifies; refuse any other. `instance_id`: the desired hash's field,
        else the id the order claims is reported."""
        try:
            if self._order_key is None:
                text = signing.unverified(order)
            else:
                text = self._order_key.verify(self._keys.namespace, self.node, order)
            placement = wire.decode_placement(text)
        except (KeyError, TypeError, ValueError) as error:  # BadOrder is a ValueError
            self._refuse(instance_id or signing.claimed_instance(order), error)
            return
        self._refused.discard(placement.instance_id)
        self._start(placement, adopted=adopted)

    def _refuse(self, instance_id: str | None, error: Exception) -> None:
        """Log a refused order once per instance (its id quoted: it may hold anything) and report the instance failed,
        unless it runs here."""
        if instance_id is None:
            log.warning("node %s: refused an order naming no instance: %s", self.node, error)
        elif instance_id not in self._refused:
            self._refused.add(instance_id)
            if instance_id in self._instances:
                log.warning("node %s: refused an order for running instance %r: %s", self.node, instance_id, error)
                return
            log.warning("node %s: refused placement %r: %s; not run, reported failed", self.node, instance_id, error)
            self._report(Fact(instance_id, FactKind.FAILED))

    def _start(self, placement: Placement, *, adopted: bool) -> None:
        if placement.instance_id in self._instances:
            return  # an order already applied while reconciling
        supervisor = InstanceSupervisor(
            placement,
            root=self._workdir,
            payloads=self._payloads,
            report=self._report,
            grace_s=self._grace_s,
            logs=self._logs,
            adopted=adopted,
            announce=lambda info: self._announce(placement.instance_id, info),
            user=self._run_as,
        )
        self._instances[placement.instance_id] = supervisor
        supervisor.start()

    def _stop(self, instance_id: str) -> None:
        supervisor = self._instances.pop(instance_id, None)
        if supervisor is not None:
            supervisor.stop()
            self._stopping.append(supervisor)
            self._announce(instance_id, None)

    def _renew(self, *, every: bool) -> None:
        """Renew the discovery entry of each running instance: of every one when `every`, else only of runs
        not renewed yet (just started, or whose entry was not there yet)."""
        for instance_id in [i for i in self._renewed if i not in self._instances]:
            del self._renewed[instance_id]
        for instance_id, supervisor in list(self._instances.items()):
            serving = supervisor.serving()
            if serving is None:
                self._renewed.pop(instance_id, None)
            elif every or self._renewed.get(instance_id) != serving.run:
                if self._registry.heartbeat(instance_id, self._endpoint(serving)):
                    self._renewed[instance_id] = serving.run
                else:  # not registered (any more): tried again on the next beat, in case it comes
                    self._renewed.pop(instance_id, None)

    def _endpoint(self, serving: Serving) -> dict[str, str]:
        return {"node": self.node, "host": self._host, "port": "" if serving.port is None else str(serving.port)}

    def _resync(self) -> None:
        self._runtime.delete(self.node)  # an entry whose deletion was lost goes too
        for supervisor in self._instances.values():
            supervisor.resync()
            supervisor.announce_again()

    def _shutdown(self) -> None:
        for instance_id in list(self._instances):
            self._stop(instance_id)
        for supervisor in self._stopping:
            supervisor.join()
        self._logs.close()
        try:
            self._client.delete(self._keys.node_heartbeat(self.node), self._keys.node_runtime(self.node))
        except redis.RedisError as error:
            log.warning("node %s: heartbeat not deleted (%s); it expires by itself", self.node, error)

    # ---- Redis ---------------------------------------------------------------------------------

    def _beat(self) -> bool:
        """Renew the heartbeat with the controller's TTL; False when it had expired (or never existed)."""
        keys = [self._keys.node_heartbeat(self.node), self._keys.node_ttl, self._keys.nodes]
        pipe = self._client.pipeline(transaction=False)
        self._heartbeat(keys, [self.node, self._identity, wire.DEFAULT_NODE_TTL_MS], client=pipe)
        pipe.get(self._keys.node_ttl)
        self._runtime.keep_alive(pipe, self.node, self._node_ttl_ms)
        alive, ttl, _ = pipe.execute()
        self._node_ttl_ms = int(ttl) if ttl and ttl.isdigit() else wire.DEFAULT_NODE_TTL_MS
        return bool(alive)

    def _last_order_id(self) -> str:
        last = self._client.xrevrange(self._keys.node_assignments(self.node), count=1)
        return str(last[0][0]) if last else "0-0"

    def _payloads(self, fingerprint: str) -> dict[str, bytes] | None:
        """For an instance thread: a bundle Redis cannot give (after the client's retries) counts as missing, so
        the instance fails and the controller replaces it."""
        try:
            return self._bundles.get(fingerprint)
        except redis.RedisError as error:
            log.warning("node %s: bundle %s not read (%s)", self.node, fingerprint, error)
            return None

    def _announce(self, instance_id: str, info: ProcessInfo | None) -> None:
        """Called on a change of an instance's process (None: it stopped or completed); an entry that cannot be
        written marks the state for a resync, which writes every entry afresh."""
        try:
            self._runtime.publish(self.node, instance_id, info, self._node_ttl_ms)
        except redis.RedisError as error:
            self._facts_lost = True
            log.warning("node %s: process of %s not recorded (%s)", self.node, instance_id, error)

    def _report(self, fact: Fact) -> None:
        """Called from instance threads; a fact that cannot be written marks the state for a resync."""
        fields = wire.fact_fields(fact, self.node)
        try:
            if fact.kind is FactKind.COMPLETED:
                keys = [self._keys.facts, self._keys.node_desired(self.node), self._keys.assigned]
                pairs = [item for pair in fields.items() for item in pair]
                self._complete(keys, [FACTS_MAXLEN, fact.instance_id, self.node, *pairs])
            else:
                self._client.xadd(self._keys.facts, fields, maxlen=FACTS_MAXLEN, approximate=True)
        except redis.RedisError as error:
            self._facts_lost = True
            log.warning("node %s: fact %s of %s not written (%s)", self.node, fact.kind, fact.instance_id, error)
