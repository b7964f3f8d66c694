"""A whole live world on one machine: redis-server on a free loopback port, controllers and workers as processes.

`mn-deploy dev up` runs one, and the end-to-end tests drive one (killing and restarting its parts). Every child
leads its own process group and dies with the stack (backends.live.process.ProcessGroup), so stopping the stack
leaves no process behind. How to run `mn-deploy` is passed in: the application owns its command line.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import grpc

from backends.live import wire
from backends.live.lease import DEFAULT_TTL_MS
from backends.live.process import ProcessGroup
from backends.redis import Keys, connect
from backends.redis.keys import namespace_from_env
from backends.redis.server import LocalRedisServer, executable

STOP_GRACE_S = 5.0


class StackError(Exception):
    """The stack could not start; the message is the one line a user sees."""


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
    ) -> None:
        """`command` runs `mn-deploy`; with `logs`, each child writes to `<workdir>/<name>.log`, else to stderr."""
        self._command = list(command)
        self.grpc_address = grpc_address
        self.nodes = [f"node-{i}" for i in range(1, workers + 1)]
        self._own_workdir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="mn-dev-")) if workdir is None else workdir
        self._lease_ttl_ms = lease_ttl_ms
        self._node_ttl_ms = node_ttl_ms
        self._logs = logs
        self._redis: LocalRedisServer | None = None
        self.controllers: list[ProcessGroup] = []
        self.workers: dict[str, ProcessGroup] = {}

    @property
    def redis_url(self) -> str:
        if self._redis is None:
            raise StackError("the stack is not started")
        return self._redis.url

    def start(self, timeout_s: float = 30.0) -> None:
        """Redis, one controller, the workers; returns once the gRPC port answers and every worker beats."""
        if executable() is None:
            raise StackError("redis-server is not installed: apt-get install -y redis-server (or brew install redis)")
        _check_free(self.grpc_address)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._redis = LocalRedisServer(self.workdir / "redis")
        try:
            self._redis.start()
        except RuntimeError as error:
            raise StackError(str(error)) from None
        self.start_controller()
        for node in self.nodes:
            self.start_worker(node)
        self.wait_ready(timeout_s)

    def start_controller(self) -> ProcessGroup:
        """One more controller: the leader if none holds the lease, else a standby."""
        name = f"controller-{len(self.controllers) + 1}"
        args = ["controller", "run", "--redis", self.redis_url, "--grpc", self.grpc_address]
        args += ["--lease-ttl-ms", str(self._lease_ttl_ms), "--node-ttl-ms", str(self._node_ttl_ms)]
        child = self._spawn(name, args)
        self.controllers.append(child)
        return child

    def start_worker(self, node: str) -> ProcessGroup:
        """The worker of `node` (again, after it was killed)."""
        workdir = self.workdir / node
        workdir.mkdir(parents=True, exist_ok=True)
        args = ["agent", "worker", "--redis", self.redis_url, "--node", node, "--workdir", str(workdir)]
        self.workers[node] = self._spawn(node, args)
        return self.workers[node]

    def wait_ready(self, timeout_s: float) -> None:
        """Until the gRPC API answers and every worker's heartbeat key exists (checked every 50 ms)."""
        deadline = time.monotonic() + timeout_s
        client = connect(self.redis_url)
        keys = Keys(namespace_from_env())
        try:
            with grpc.insecure_channel(self.grpc_address) as channel:
                try:
                    grpc.channel_ready_future(channel).result(timeout=timeout_s)
                except grpc.FutureTimeoutError:
                    raise StackError(f"the controller did not serve {self.grpc_address} in {timeout_s:g} s") from None
            while not all(client.exists(keys.node_heartbeat(node)) for node in self.nodes):
                if time.monotonic() > deadline:
                    raise StackError(f"the workers did not all report in {timeout_s:g} s")
                time.sleep(0.05)
        finally:
            client.close()

    def wait(self, stop: threading.Event) -> str | None:
        """Until `stop` is set (None) or a child exits by itself (what exited, for the user)."""
        while not stop.wait(0.5):
            for name, child in self._children():
                code = child.wait(0)
                if code is not None:
                    return f"{name} exited with code {code}"
        return None

    def stop(self) -> None:
        """SIGTERM every child's group, SIGKILL what is left after the grace period, then stop redis."""
        children = [child for _, child in self._children()]
        for child in children:
            child.terminate(STOP_GRACE_S)
        for child in children:
            child.wait()
        self.controllers.clear()
        self.workers.clear()
        if self._redis is not None:
            self._redis.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _children(self) -> list[tuple[str, ProcessGroup]]:
        named = [(f"controller-{i}", c) for i, c in enumerate(self.controllers, 1)]
        return named + list(self.workers.items())

    def _spawn(self, name: str, args: list[str]) -> ProcessGroup:
        if not self._logs:
            return ProcessGroup(self._command + args, cwd=self.workdir, env=os.environ, output=2)
        with open(self.workdir / f"{name}.log", "ab") as log:
            return ProcessGroup(self._command + args, cwd=self.workdir, env=os.environ, output=log.fileno())


def _check_free(address: str) -> None:
    """A gRPC port someone else serves would look ready; refuse it up front instead."""
    host, _, port = address.rpartition(":")
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC binds: TIME_WAIT is no obstacle
        try:
            probe.bind((host.strip("[]") or "127.0.0.1", int(port)))
        except OSError as error:
            raise StackError(f"cannot serve gRPC on {address}: {error.strerror}") from None
