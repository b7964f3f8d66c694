"""The controller daemon (`mn-deploy controller run`): a standby until it holds the lease, then the leader.

A leader term builds a fresh controller whose store is fenced with the term's lease value, restores every active
deployment from Redis (records and instance states, deadlines as stored), asks the workers to report their
instances' facts again, serves the gRPC API (once its address is free: the leader it replaces may still hold it,
see `WaitingServer`) and drives the core in real time. Each decision is stored in one transaction with its orders
to workers and its discovery changes; what went into it (facts, operator calls) is recorded per deployment for
traces (backends/redis/recorder.py). The term ends when the daemon is stopped, the lease is lost (a failed
renewal or a fenced write) or a decision could not be stored (the controller's memory is then ahead of Redis);
the daemon stops serving at once, drops that controller and goes back to standby, giving the lease up in the last
case so that the next term (this daemon's or a standby's) starts from Redis at once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass

import redis

from backends.live.clock import wall_ms
from backends.live.controller.driver import Driver
from backends.live.controller.lease import DEFAULT_TTL_MS, Lease
from backends.live.controller.runtime import RedisRuntime
from backends.live.controller.server import OPEN_DOOR, Door, WaitingServer, serve
from backends.protocol import wire
from backends.protocol.signing import OrderKey
from backends.redis import FencedError, Keys, RedisRegistry, RedisStore, connect
from backends.redis.bundles import RedisBundleStore
from backends.redis.fencing import Fence
from backends.redis.instance_runtime import InstanceRuntime
from backends.redis.keys import namespace_from_env
from backends.redis.recorder import RedisRecorder
from backends.redis.transaction import Transaction
from mn_deploy_core.controller import Controller
from mn_deploy_core.errors import ConflictError
from mn_deploy_core.ports import Fact, FactKind

log = logging.getLogger(__name__)

# A fact about no instance: the core ignores it, so adding one to the stream only ends the driver's wait.
_WAKE = Fact("wake", FactKind.PLACED)


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    """What `controller run` is given; `owner` names this daemon in the lease (default `<host>/<pid>`)."""

    redis_url: str
    grpc_address: str
    namespace: str | None = None
    lease_ttl_ms: int = DEFAULT_TTL_MS
    node_ttl_ms: int = wire.DEFAULT_NODE_TTL_MS
    owner: str | None = None
    order_key: OrderKey | None = None  # what orders to workers are signed with (None: unsigned)
    door: Door = OPEN_DOOR  # the tokens and TLS of the gRPC API


def run_daemon(config: DaemonConfig, stop: threading.Event) -> None:
    """Stand by, lead, stand by again, until `stop` is set; the lease is given up on the way out.

    While Redis cannot be reached there is nothing to lead: a term in progress ends (its lease cannot be renewed
    either) and the daemon retries every renewal interval.
    """
    namespace = config.namespace or namespace_from_env()
    client = connect(config.redis_url)
    lease = Lease(client, owner=config.owner, namespace=namespace, ttl_ms=config.lease_ttl_ms)
    log.info("standby: waiting for the controller lease")
    try:
        while not stop.is_set():
            try:
                fence = lease.acquire(stop)
                if fence is None:
                    break
                log.info("leading as %s", fence)
                _lead(config, namespace, client, lease, fence, stop)
                if not stop.is_set():
                    log.warning("lost the controller lease; standby again")
            except (redis.ConnectionError, redis.TimeoutError) as error:
                log.warning("Redis unreachable (%s); standby, retrying", error)
                stop.wait(lease.renew_interval_s)
    finally:
        with contextlib.suppress(redis.RedisError):  # unreachable: the lease expires by itself
            lease.release()
        client.close()


def _lead(
    config: DaemonConfig, namespace: str, client: redis.Redis, lease: Lease, fence: str, stop: threading.Event
) -> None:
    """One leader term; returns when it ends. A blocking read needs a socket timeout above its block."""
    facts_client = connect(config.redis_url, socket_timeout=lease.renew_interval_s + 2.0)
    keys = Keys(namespace)
    decisions = Transaction(client, Fence(keys.controller_lease, fence), breaks=True)
    runtime = RedisRuntime(
        facts_client,
        namespace=namespace,
        node_ttl_ms=config.node_ttl_ms,
        transaction=decisions,
        order_key=config.order_key,
    )
    store = RedisStore(client, namespace=namespace, transaction=decisions)
    registry = RedisRegistry(client, namespace=namespace, transaction=decisions)
    controller = Controller(store, runtime, registry, RedisRecorder(client, keys, decisions))
    lookups = RedisRegistry(client, namespace=namespace)  # the ClusterService's reads, outside any decision
    processes = InstanceRuntime(client, namespace=namespace)  # what workers keep of their instances' processes
    facts_key = keys.facts

    def wake() -> None:
        """Never fails the gRPC call that asked: without the wake the driver is only late, by a renewal at most."""
        try:
            facts_client.xadd(facts_key, wire.fact_fields(_WAKE, fence))
        except redis.RedisError as error:
            log.warning("could not wake the driver (%s)", error)

    bundles = RedisBundleStore(client, namespace=namespace)

    def chores() -> None:
        removed = store.retain()
        if removed:
            log.info("retention removed %d old version(s) with their deployments: %s", len(removed), ", ".join(removed))
        released = bundles.release_unreferenced(store.referenced_bundles())
        if released:
            log.info("retention released %d bundle(s) no version references: %s", len(released), ", ".join(released))

    def settle() -> None:
        """Store the inputs a call recorded without a decision to go with them (a fact that changed nothing)."""
        if decisions.pending:
            decisions.commit()

    driver = Driver(
        controller,
        runtime,
        lease,
        wake,
        broken=lambda: decisions.broken is not None,
        chores=chores,
        settle=settle,
    )
    server: WaitingServer | None = None
    try:
        for repair in controller.restore(wall_ms()):
            log.warning("takeover repaired: %s", repair)
        runtime.keep_only([instance.instance_id for instance in controller.instances()])
        runtime.request_resync()
        server = WaitingServer(
            lambda: serve(
                controller,
                config.grpc_address,
                lock=driver.lock,
                bundles=bundles,
                registry=lookups,
                runtime=processes,
                door=config.door,
            ),
            config.grpc_address,
        )
        server.open()
        driver.run(stop)
    except (FencedError, ConflictError) as error:
        log.warning("%s", error)
    finally:
        if server is not None:
            server.close()
        facts_client.close()
        if decisions.broken is not None:
            log.warning("a decision could not be stored (%s): taking over again from Redis", decisions.broken)
            with contextlib.suppress(redis.RedisError):  # unreachable: the lease expires by itself
                lease.release()
