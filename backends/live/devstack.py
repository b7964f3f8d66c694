"""A whole live world on one machine: redis-server on a free loopback port, controllers and workers as processes.

`mn-deploy dev up` runs one, and the end-to-end tests drive one (killing and restarting its parts). Every child
leads its own process group and dies with the stack, even with a stack killed by SIGKILL
(backends.process.ProcessGroup), so the stack leaves no process behind; nor, unless given a working
directory, any file (backends.process.ScratchDirectory). Redis keeps every record in an append-only file in
the working directory, so a redis-server that dies is restarted on the same port with every record. How to run
`mn-deploy` is passed in: the application owns its command line.

Redis requires a password generated for the stack. Its children get the URL carrying it in their environment
(MN_REDIS_URL), never on their command lines, which any user can read with `ps`; people get it from a file only
its owner can read (`redis_url_file`). The gRPC API likewise requires a token generated for the stack, kept in
`token_file` (0600): the controller is given the file's path, never the token, and a user exports
`MN_GRPC_AUTH_TOKEN_FILE` with it. Placement orders are signed with a key generated for the stack, in
`order_key_file` (0600), which the controller and the workers find through MN_ORDER_KEY_FILE.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import grpc

from backends.live.controller.lease import DEFAULT_TTL_MS
from backends.loopback import LOOPBACK
from backends.process import ProcessGroup, ScratchDirectory
from backends.protocol import job_pb2, job_pb2_grpc, signing, wire
from backends.protocol.credentials import bearer
from backends.redis import Keys, connect
from backends.redis.keys import namespace_from_env
from backends.redis.server import LocalRedisServer, TlsFiles, executable
from backends.secret_files import write_secret

STOP_GRACE_S = 5.0
WATCH_INTERVAL_S = 0.5
SCRATCH_PREFIX = "mn-dev-"
REDIS_URL_FILE = "redis-url"
TOKEN_FILE = "grpc-token"
ORDER_KEY_FILE = "order-key"
# `host:port` or `[ipv6]:port`, as gRPC takes them.
_ADDRESS = re.compile(r"(?P<host>\[[^\]]+\]|[^:\[\]]+):(?P<port>[0-9]{1,5})")


class StackError(Exception):
    """The stack could not start or go on; the message is the one line a user sees."""


class _Exits(Protocol):
    """What watching needs of a child (ProcessGroup, LocalRedisServer): its exit code, None while it runs."""

    def wait(self, timeout_s: float | None = None) -> int | None: ...


@dataclass(frozen=True, slots=True)
class _Child:
    """A process the stack watches. `restart` brings it back and says how (StackError if it cannot); a child
    without one ends the stack when it ends."""

    name: str
    process: _Exits
    restart: Callable[[], str] | None = None


class DevStack:
    """Start with `start()`, stop with `stop()` (also after a failed start)."""

    def __init__(
        self,
        command: Sequence[str],
        *,
        workers: int,
        grpc_address: str,
        workdir: Path | None = None,
        lease_ttl_ms: int = DEFAULT_TTL_MS,
        node_ttl_ms: int = wire.DEFAULT_NODE_TTL_MS,
        logs: bool = False,
        redis_tls: TlsFiles | None = None,
    ) -> None:
        """`command` runs `mn-deploy`; with `logs`, each child writes to `<workdir>/<name>.log`, else to stderr.
        Without `workdir`, the stack makes a temporary `mn-dev-*` one, removed when it stops or dies. With
        `redis_tls`, Redis speaks only TLS and everyone reaches it through a `rediss://` URL."""
        self._command = list(command)
        self.grpc_address = grpc_address
        self.nodes = [f"node-{i}" for i in range(1, workers + 1)]
        self._scratch: ScratchDirectory | None = None
        if workdir is None:
            self._scratch = ScratchDirectory(SCRATCH_PREFIX)
            workdir = self._scratch.path
        self.workdir = workdir
        self._lease_ttl_ms = lease_ttl_ms
        self._node_ttl_ms = node_ttl_ms
        self._logs = logs
        self._redis_tls = redis_tls
        self._redis: LocalRedisServer | None = None
        self.controllers: list[ProcessGroup] = []
        self.workers: dict[str, ProcessGroup] = {}

    @property
    def redis_url(self) -> str:
        """With the password: for the stack's processes and tests, not to be shown (client.masked_url)."""
        return self.redis_server.url

    @property
    def redis_url_file(self) -> Path:
        """Where the stack wrote `redis_url`, readable by its owner only, for a user's MN_REDIS_URL."""
        return self.workdir / REDIS_URL_FILE

    @property
    def token_file(self) -> Path:
        """The gRPC API's token, readable by its owner only, written anew at each start: MN_GRPC_AUTH_TOKEN_FILE."""
        return self.workdir / TOKEN_FILE

    @property
    def order_key_file(self) -> Path:
        """The key the controller signs placement orders with and the workers verify them with, readable by its
        owner only, written anew at each start (orders under an earlier key are refused, and replaced)."""
        return self.workdir / ORDER_KEY_FILE

    @property
    def token(self) -> str:
        """The token every call to the stack's gRPC API carries (tests hand it to the SDK's Client)."""
        return self.token_file.read_text().strip()

    def start(self, timeout_s: float = 30.0) -> None:
        """Redis, one controller, the workers; returns once the gRPC port answers and every worker beats."""
        if executable() is None:
            raise StackError("redis-server is not installed: apt-get install -y redis-server (or brew install redis)")
        _check_free(self.grpc_address)
        try:
            self.workdir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StackError(f"cannot use {self.workdir} as the working directory: {error.strerror}") from None
        self._redis = LocalRedisServer(
            self.workdir / "redis", appendonly=True, password=secrets.token_urlsafe(24), tls=self._redis_tls
        )
        try:
            self._redis.start()
        except RuntimeError as error:
            raise StackError(str(error)) from None
        write_secret(self.redis_url_file, self.redis_url + "\n")
        write_secret(self.token_file, secrets.token_urlsafe(32) + "\n")
        write_secret(self.order_key_file, secrets.token_hex(32) + "\n")
        self.start_controller()
        for node in self.nodes:
            self.start_worker(node)
        self.wait_ready(timeout_s)

    def start_controller(self) -> ProcessGroup:
        """One more controller: the leader if none holds the lease, else a standby."""
        name = f"controller-{len(self.controllers) + 1}"
        args = ["controller", "run", "--grpc", self.grpc_address, "--auth-token-file", str(self.token_file)]
        args += ["--lease-ttl-ms", str(self._lease_ttl_ms), "--node-ttl-ms", str(self._node_ttl_ms)]
        child = self._spawn(name, args)
        self.controllers.append(child)
        return child

    def start_worker(self, node: str) -> ProcessGroup:
        """The worker of `node` (again, after it was killed)."""
        workdir = self.workdir / node
        workdir.mkdir(parents=True, exist_ok=True)
        args = ["agent", "worker", "--node", node, "--workdir", str(workdir)]
        args += ["--advertise-host", LOOPBACK]  # every agent of the stack is on this machine
        self.workers[node] = self._spawn(node, args)
        return self.workers[node]

    def wait_ready(self, timeout_s: float) -> None:
        """Until a leader answers a call on the gRPC address (an open port is not enough: a controller that has
        just lost its lease still holds it) and every worker's heartbeat key exists (checked every 50 ms)."""
        deadline = time.monotonic() + timeout_s
        client = connect(self.redis_url)
        keys = Keys(namespace_from_env())
        try:
            with grpc.insecure_channel(self.grpc_address) as channel:
                _wait_for_a_leader(
                    channel,
                    deadline,
                    f"the controller did not serve {self.grpc_address} in {timeout_s:g} s",
                    bearer(self.token),
                )
            while not all(client.exists(keys.node_heartbeat(node)) for node in self.nodes):
                if time.monotonic() > deadline:
                    raise StackError(f"the workers did not all report in {timeout_s:g} s")
                time.sleep(0.05)
        finally:
            client.close()

    def wait(self, stop: threading.Event, notify: Callable[[str], None]) -> str | None:
        """Until `stop` is set (None) or a child ends that cannot be restarted (what ended, for the user). Each
        restart is told to `notify` in one line."""
        while not stop.wait(WATCH_INTERVAL_S):
            for child in self._watched():
                failure = _check(child, notify)
                if failure is not None:
                    return failure
        return None

    def stop(self) -> None:
        """SIGTERM every child's group, SIGKILL what is left after the grace period, then stop redis (the others
        need it to stop cleanly) and remove the working directory if the stack made it."""
        children = [child for _, child in self._children()]
        for child in children:
            child.terminate(STOP_GRACE_S)
        for child in children:
            child.wait()
        self.controllers.clear()
        self.workers.clear()
        if self._redis is not None:
            self._redis.stop()
        if self._scratch is not None:
            self._scratch.close()

    @property
    def redis_server(self) -> LocalRedisServer:
        """The stack's redis-server (tests stop and start it to make an outage)."""
        if self._redis is None:
            raise StackError("the stack is not started")
        return self._redis

    def _restart_redis(self) -> str:
        """On the same port and data directory: every client goes on with the URL it has, and the append-only file
        brings every record back."""
        server = self.redis_server
        try:
            server.start()
        except RuntimeError as error:
            raise StackError(f"could not restart it: {error}") from None
        return f"restarted on port {server.port} with the records of its append-only file"

    def _watched(self) -> list[_Child]:
        """Redis first: the others depend on it. Only Redis is restarted; a controller or worker that ends by
        itself has a reason the user should see."""
        restartable = [_Child("redis-server", self._redis, self._restart_redis)] if self._redis is not None else []
        return restartable + [_Child(name, process) for name, process in self._children()]

    def _children(self) -> list[tuple[str, ProcessGroup]]:
        named = [(f"controller-{i}", c) for i, c in enumerate(self.controllers, 1)]
        return named + list(self.workers.items())

    def _spawn(self, name: str, args: list[str]) -> ProcessGroup:
        env = {**os.environ, "MN_REDIS_URL": self.redis_url}  # not in `args`: `ps` shows those to every user
        env[signing.ENV] = str(self.order_key_file)
        if not self._logs:
            return ProcessGroup(self._command + args, cwd=self.workdir, env=env, output=2)
        with open(self.workdir / f"{name}.log", "ab") as log:
            return ProcessGroup(self._command + args, cwd=self.workdir, env=env, output=log.fileno())


def _check(child: _Child, notify: Callable[[str], None]) -> str | None:
    """None while `child` runs or once it is restarted (told to `notify`); else what ended it and why for good."""
    code = child.process.wait(0)
    if code is None:
        return None
    ended = f"{child.name} {_how_it_ended(code)}"
    if child.restart is None:
        return ended
    try:
        notify(f"{ended}; {child.restart()}")
    except StackError as error:
        return f"{ended}; {error}"
    return None


def _how_it_ended(code: int) -> str:
    """As a user reads it: a negative code is the signal that killed the process (subprocess's convention)."""
    if code >= 0:
        return f"exited with code {code}"
    try:
        return f"was killed by {signal.Signals(-code).name}"
    except ValueError:  # a real-time signal has no name
        return f"was killed by signal {-code}"


def split_address(address: str) -> tuple[str, int]:
    """`host:port` (`[ipv6]:port`) as the host to bind and the port. Checked before anything starts: gRPC would
    only refuse it in the controller, once the stack is up."""
    match = _ADDRESS.fullmatch(address)
    if match is None or not 0 < int(match["port"]) < 65536:
        raise StackError(f"{address!r} is not HOST:PORT with a port from 1 to 65535")
    return match["host"].strip("[]"), int(match["port"])


def _check_free(address: str) -> None:
    """A gRPC port someone else serves would look ready; refuse it up front instead."""
    host, port = split_address(address)
    try:
        family, kind, proto, _, where = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC binds: TIME_WAIT is no obstacle
            probe.bind(where)
    except OSError as error:  # unknown host (socket.gaierror), address in use or not this machine's
        raise StackError(f"cannot serve gRPC on {address}: {error.strerror}") from None


def _wait_for_a_leader(
    channel: grpc.Channel, deadline: float, failure: str, metadata: tuple[tuple[str, str], ...]
) -> None:
    """Until a ListDeployments call (with `metadata`: the token) is answered (by a leader; any answer but
    UNAVAILABLE or no answer counts)."""
    stub = job_pb2_grpc.JobServiceStub(channel)
    request = job_pb2.ListDeploymentsRequest(query_json='{"limit": 1}', version=1)
    while True:
        try:
            stub.ListDeployments(request, timeout=max(0.05, min(1.0, deadline - time.monotonic())), metadata=metadata)
            return
        except grpc.RpcError as error:
            if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                return
        if time.monotonic() > deadline:
            raise StackError(failure)
        time.sleep(0.05)
