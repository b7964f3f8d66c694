"""Serving the JobService and the ClusterService: the daemon calls `serve`, with the lock its driver thread holds,
through a `WaitingServer`, since the leader it replaces may still hold the address."""

from __future__ import annotations

import enum
import errno
import ipaddress
import logging
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf.descriptor import ServiceDescriptor

from backends.live.clock import wall_ms
from backends.live.controller.auth import NO_TOKENS, BearerAuth, Tokens
from backends.live.controller.bundles import BundleStore, MemoryBundleStore
from backends.live.controller.cluster_service import ClusterService
from backends.live.controller.decoding import StrictDecoding
from backends.live.controller.job_service import JobService
from backends.protocol import cluster_pb2, cluster_pb2_grpc, job_pb2, job_pb2_grpc
from backends.protocol.sizes import server_options
from backends.redis.instance_runtime import InstanceRuntime
from backends.redis.registry import RedisRegistry
from mn_deploy_core.controller import Controller

# MirrorNeuron's own port, so `mn` and the SDK find us with their defaults (or MN_GRPC_TARGET).
DEFAULT_ADDRESS = "127.0.0.1:55051"
# Calls serialize on the controller lock; a few threads keep slow clients from queueing fast ones.
_WORKERS = 8
# Binding a taken address is retried this soon, then less often, up to the longest: a client riding out a
# failover sees the new leader within a second of the old one letting the address go.
_FIRST_RETRY_S = 0.05
_LONGEST_RETRY_S = 1.0

log = logging.getLogger(__name__)


class TlsError(Exception):
    """A certificate or key that cannot be served; the message is one line."""


@dataclass(frozen=True, slots=True)
class ServerTls:
    """The PEM certificate chain and private key the server presents."""

    cert: bytes
    key: bytes

    def __repr__(self) -> str:  # never the key, in a log or a traceback
        return "ServerTls(...)"

    @classmethod
    def load(cls, cert: Path, key: Path) -> ServerTls:
        """Both files read now, so a wrong path is one line at startup rather than a failed bind later."""
        pems = []
        for what, path in (("--tls-cert", cert), ("--tls-key", key)):
            try:
                pems.append(path.read_bytes())
            except OSError as error:
                raise TlsError(f"cannot read {what} {path}: {error.strerror}") from None
            if b"-----BEGIN " not in pems[-1]:
                raise TlsError(f"{what} {path} is not PEM")
        return cls(pems[0], pems[1])


@dataclass(frozen=True, slots=True)
class Door:
    """Who may come in: the tokens every call must carry (none: anyone who reaches the port), and the TLS the
    server speaks (none: plain text)."""

    tokens: Tokens = NO_TOKENS
    tls: ServerTls | None = None


OPEN_DOOR = Door()


def is_loopback(address: str) -> bool:
    """Whether every address `HOST:PORT` resolves to is a loopback one, so only this machine can connect."""
    host = address.rpartition(":")[0].strip("[]")
    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return False
    return bool(found) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in found)


def serve(
    controller: Controller,
    address: str = DEFAULT_ADDRESS,
    *,
    lock: AbstractContextManager[Any] | None = None,
    bundles: BundleStore | None = None,
    clock: Callable[[], float] = wall_ms,
    registry: RedisRegistry | None = None,
    runtime: InstanceRuntime | None = None,
    door: Door = OPEN_DOOR,
) -> grpc.Server:
    """Start a server for `controller` on `address`, letting in only the calls `door` allows (by default every
    call, in plain text: `controller run` refuses that on an address other machines reach).

    Pass the `lock` every other caller of the controller takes; without one the server makes its own, which
    is only right when nothing else calls the controller. `clock` is the time operator calls happen at (the
    wall clock's epoch ms; tests pass their own). With a `registry` (the Redis discovery the workers renew) the
    ClusterService's lookups are served too; with a `runtime`, GetDeployment lists each instance's node and
    process as its worker keeps them. Stop the server with `server.stop(grace)`.
    """
    # Without SO_REUSEPORT a second server on a taken port fails here instead of silently sharing its traffic.
    executor = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="mn-grpc")
    interceptors = [BearerAuth(door.tokens)] if door.tokens else []  # refused calls are never decoded
    interceptors.append(StrictDecoding())
    server = grpc.server(executor, interceptors=interceptors, options=[("grpc.so_reuseport", 0), *server_options()])
    jobs = JobService(controller, lock or threading.Lock(), bundles or MemoryBundleStore(), clock, runtime)
    job_pb2_grpc.add_JobServiceServicer_to_server(
        answer_unimplemented(jobs, job_pb2_grpc.JobServiceServicer, job_pb2.DESCRIPTOR.services_by_name["JobService"]),
        server,
    )
    if registry is not None:
        cluster = answer_unimplemented(
            ClusterService(registry),
            cluster_pb2_grpc.ClusterServiceServicer,
            cluster_pb2.DESCRIPTOR.services_by_name["ClusterService"],
        )
        cluster_pb2_grpc.add_ClusterServiceServicer_to_server(cluster, server)
    try:
        if door.tls is None:
            server.add_insecure_port(address)
        else:
            server.add_secure_port(address, grpc.ssl_server_credentials([(door.tls.key, door.tls.cert)]))
    except RuntimeError:
        executor.shutdown(wait=False)
        raise
    server.start()
    return server


Servicer = TypeVar("Servicer")


def answer_unimplemented(servicer: Servicer, base: type, service: ServiceDescriptor) -> Servicer:
    """`servicer`, with each method of `service` it leaves to the generated `base` answering UNIMPLEMENTED
    after one log line. The base's own answer raises NotImplementedError, which gRPC logs with a whole
    traceback for every call of a method we do not serve."""
    for method in service.methods:
        if getattr(type(servicer), method.name) is getattr(base, method.name):
            setattr(servicer, method.name, _unimplemented(f"{service.name}.{method.name}"))
    return servicer


def _unimplemented(name: str) -> Callable[[Any, grpc.ServicerContext], Any]:
    def answer(request: Any, context: grpc.ServicerContext) -> Any:
        log.warning("%s called: not implemented by mn-deploy, answered UNIMPLEMENTED", name)
        context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{name} is not implemented by mn-deploy")

    return answer


class Bind(enum.Enum):
    """What binding an address would do now."""

    FREE = "free"
    TAKEN = "taken"  # someone listens there: it may let go
    IMPOSSIBLE = "impossible"  # never, on this host


def probe(address: str) -> Bind:
    """Whether `address` (`HOST:PORT`, `[IPv6]:PORT`) can be bound now, found by binding a plain socket to each
    address the host resolves to: gRPC's own error says only that binding failed. TAKEN when one is in use, FREE
    when one binds (gRPC serves on those), IMPOSSIBLE when the host does not resolve or is not this machine's, or
    the address is one gRPC reads but this does not (such as `unix:PATH`)."""
    host, _, port = address.rpartition(":")
    try:
        found = socket.getaddrinfo(host.strip("[]"), int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, ValueError, UnicodeError):  # socket.gaierror is an OSError
        return Bind.IMPOSSIBLE
    outcomes = {_bind(family, sockaddr) for family, _, _, _, sockaddr in found}
    return next((b for b in (Bind.TAKEN, Bind.FREE) if b in outcomes), Bind.IMPOSSIBLE)


def _bind(family: int, sockaddr: Any) -> Bind:
    with socket.socket(family, socket.SOCK_STREAM) as trial:
        trial.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC binds: TIME_WAIT is no obstacle
        try:
            trial.bind(sockaddr)
        except OSError as error:
            return Bind.TAKEN if error.errno == errno.EADDRINUSE else Bind.IMPOSSIBLE
        except OverflowError:  # a port over 65535
            return Bind.IMPOSSIBLE
    return Bind.FREE


class WaitingServer:
    """A leader's server, started by `start` (which binds `address`) as soon as the address is free.

    A new leader's address may still be held by the leader it replaces, on the same host: one that is paused
    (SIGSTOP, a frozen VM) or slow goes on listening until it notices, at its next lease renewal, that its term is
    over, and then lets the address go. Meanwhile the new leader leads without serving (its driver goes on) and
    retries binding with backoff, until it can or its term ends (`close`). An address this host can never bind
    is refused at once instead: holding the lease without ever serving would keep every other controller out.
    """

    def __init__(self, start: Callable[[], grpc.Server], address: str) -> None:
        self._start = start
        self._address = address
        self._closed = threading.Event()
        self._server: grpc.Server | None = None
        self._thread: threading.Thread | None = None

    def open(self) -> None:
        """Serve now, or wait for the address in a thread; RuntimeError when this host can never bind it.

        A taken address is not handed to gRPC at all: it would log an error line of its own, and for a host that
        resolves to several addresses (`localhost`) serve on the free ones only, beside the old leader.
        """
        if probe(self._address) is not Bind.TAKEN:
            try:
                self._serving(self._start())
                return
            except RuntimeError:
                if probe(self._address) is Bind.IMPOSSIBLE:
                    raise
        log.warning(
            "gRPC address %s is in use (by the previous leader, if paused or slow to step down): "
            "leading without serving until it is free",
            self._address,
        )
        self._thread = threading.Thread(target=self._wait, name="mn-grpc-bind", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving, or waiting for the address."""
        self._closed.set()
        if self._thread is not None:
            self._thread.join()
        if self._server is not None:
            self._server.stop(None).wait()

    def _wait(self) -> None:
        """Bind once the address looks free."""
        delay = _FIRST_RETRY_S
        while not self._closed.wait(delay):
            if probe(self._address) is Bind.FREE:
                with suppress(RuntimeError):  # taken again in between: keep waiting
                    self._serving(self._start())
                    return
            delay = min(2 * delay, _LONGEST_RETRY_S)

    def _serving(self, server: grpc.Server) -> None:
        self._server = server
        log.info("serving gRPC on %s", self._address)
