"""A live world on a real redis-server, driven step by step on a manual clock, whose controller can be made to die
after any write of its own: the crash-point harness of tests/live/test_crash_points.py.

The controller is the real one with the live store, runtime and registry sharing one transaction, as the daemon
wires them; a term of it is replaced, as a standby would replace it, by a new controller restored from Redis.
Workers are in-process stand-ins for backends.live.worker.daemon: each node's desired hash is what it runs, an
instance reports running, ready and its checks (failing for an image named `bad`) once it starts, and a resync
order makes it report them again. What they run is therefore exactly what the desired hashes say, which is
what the convergence invariants compare the records with.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
from redis.client import Pipeline

from backends.live.controller.runtime import RedisRuntime
from backends.protocol import wire
from backends.redis import Keys, RedisRegistry, RedisStore, Transaction
from backends.redis.fencing import Fence
from mn_deploy_core.controller import Controller
from mn_deploy_core.ports import Fact, FactKind
from mn_deploy_core.records import DeploymentRecord

NAMESPACE = "mn_crash"
K = Keys(NAMESPACE)
NODES = ("n1", "n2")
STEPS = 10_000


class Crash(BaseException):
    """The controller process dies here: nothing after this point of the call happens."""


class Writes:
    """Counts the controller's writes that reach Redis across its terms; after the `crash_after`-th it dies."""

    def __init__(self, crash_after: int | None) -> None:
        self.count = 0
        self.crash_after = crash_after

    def done(self) -> None:
        self.count += 1
        if self.count == self.crash_after:
            raise Crash(f"after write {self.count}")


class CountingFence(Fence):
    """A fence whose every sent transaction (one decision's writes) is counted."""

    def __init__(self, lease_key: str, token: str, writes: Writes) -> None:
        super().__init__(lease_key, token)
        self._writes = writes

    def results(self, pipe: Pipeline) -> list[Any]:
        result = super().results(pipe)
        self._writes.done()
        return result


class Term:
    """One controller term: the lease taken with a new token, a controller restored from what Redis holds."""

    def __init__(self, client: redis.Redis, number: int, writes: Writes, now: float) -> None:
        token = f"controller:{number}"
        client.set(K.controller_lease, token)
        self.decisions = Transaction(client, CountingFence(K.controller_lease, token, writes), breaks=True)
        self.runtime = RedisRuntime(client, namespace=NAMESPACE, transaction=self.decisions)
        store = RedisStore(client, namespace=NAMESPACE, transaction=self.decisions)
        registry = RedisRegistry(client, namespace=NAMESPACE, transaction=self.decisions)
        self.controller = Controller(store, self.runtime, registry)
        self.repairs = self.controller.restore(now)
        self.runtime.request_resync()


class Worker:
    """A node that runs what its desired hash says and reports the facts of an instance that starts."""

    def __init__(self, client: redis.Redis, node: str) -> None:
        self._client = client
        self.node = node
        self.running: dict[str, Any] = {}
        self.dead: set[str] = set()
        self._cursor = "0"
        client.set(K.node_heartbeat(node), "alive", px=3_600_000)
        client.sadd(K.nodes, node)

    def step(self) -> bool:
        """Follow orders and the desired hash once; whether anything changed."""
        resync = self._read_orders()
        desired = {i: wire.decode_placement(p) for i, p in self._client.hgetall(K.node_desired(self.node)).items()}
        started = [i for i in desired if i not in self.running and i not in self.dead]
        stopped = [i for i in self.running if i not in desired]
        for instance_id in stopped:
            del self.running[instance_id]
        for instance_id in started:
            self.running[instance_id] = desired[instance_id]
        for instance_id in self.running if resync else started:
            self._report(instance_id)
        for instance_id in self.dead if resync else ():
            self._client.xadd(K.facts, wire.fact_fields(Fact(instance_id, FactKind.FAILED), self.node))
        return bool(started or stopped or resync)

    def kill(self, agent_id: str) -> bool:
        """Its instance of `agent_id` fails for good (restarts used up); whether it ran one."""
        for instance_id, placement in self.running.items():
            if placement.agent_id == agent_id:
                del self.running[instance_id]
                self.dead.add(instance_id)
                self._client.xadd(K.facts, wire.fact_fields(Fact(instance_id, FactKind.FAILED), self.node))
                return True
        return False

    def _read_orders(self) -> bool:
        """Whether a resync was ordered since the last step (place and stop orders are read off the hash)."""
        entries = self._client.xrange(K.node_assignments(self.node), min=f"({self._cursor}")
        if entries:
            self._cursor = entries[-1][0]
        return any(fields.get("op") == wire.RESYNC for _, fields in entries)

    def _report(self, instance_id: str) -> None:
        placement = self.running[instance_id]
        bad = "bad" in str(placement.node.get("config", {}).get("image", ""))
        check = FactKind.CHECK_FAILING if bad else FactKind.CHECK_PASSING
        facts = [Fact(instance_id, FactKind.RUNNING), Fact(instance_id, FactKind.READY)]
        facts += [Fact(instance_id, check, name) for name in placement.checks]
        for fact in facts:
            self._client.xadd(K.facts, wire.fact_fields(fact, self.node))


class CrashWorld:
    """Operator calls and settling, through whichever term leads; a crash starts the next term at once."""

    def __init__(self, client: redis.Redis, crash_after: int | None = None) -> None:
        self.client = client
        self.now = 0.0
        self.writes = Writes(crash_after)
        self.workers = [Worker(client, node) for node in NODES]
        self.terms = 0
        self.crashes = 0
        self.repairs: list[str] = []
        self.term = self._next_term()

    def call(self, verb: Callable[[Controller], DeploymentRecord | None]) -> DeploymentRecord | None:
        """An operator call; None when the controller died in it (the client saw the call fail)."""
        return self._guarded(lambda: verb(self.term.controller))

    def kill(self, agent_id: str) -> bool:
        """The agent's running instance fails for good, wherever it runs (if it runs: a crash may have lost its
        deployment); whether one did."""
        return any(worker.kill(agent_id) for worker in self.workers)

    def settle(self) -> None:
        """Run workers and the controller until nothing is left to do, moving the clock to each timer."""
        for _ in range(STEPS):
            moved = any([worker.step() for worker in self.workers])
            crashes = self.crashes
            facts = self._guarded(self._take_facts)
            if moved or facts or self.crashes > crashes:  # a new term first hears the workers out
                continue
            due = self.term.controller.next_wakeup()
            if due is None:
                return
            self.now = max(self.now, due)
            self._guarded(lambda: self.term.controller.tick(self.now))
        raise AssertionError(f"no quiescence after {STEPS} steps")

    def _take_facts(self) -> bool:
        """What the daemon's driver does each pass: tick, housekeeping, the facts, then acknowledge them."""
        term = self.term
        term.controller.tick(self.now)
        term.runtime.assign_pending()
        entries = term.runtime.read_facts(0)
        for _, fact in entries:
            term.controller.observe(fact, self.now)
        term.runtime.ack([entry_id for entry_id, _ in entries])
        return bool(entries)

    def _guarded(self, step: Callable[[], Any]) -> Any:
        try:
            return step()
        except Crash:
            self.crashes += 1
            self.term = self._next_term()
            return None

    def _next_term(self) -> Term:
        self.terms += 1
        term = Term(self.client, self.terms, self.writes, self.now)
        self.repairs += term.repairs
        return term
