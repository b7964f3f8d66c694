"""Serving the JobService: the daemon calls `serve` with the lock its driver thread holds."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any

import grpc

from backends.live.bundles import BundleStore, MemoryBundleStore
from backends.live.clock import wall_ms
from backends.live.grpc.job_pb2_grpc import add_JobServiceServicer_to_server
from backends.live.grpc.service import JobService
from mn_deploy_core.controller import Controller

# MirrorNeuron's own port, so `mn` and the SDK find us with their defaults (or MN_GRPC_TARGET).
DEFAULT_ADDRESS = "127.0.0.1:55051"
# Calls serialize on the controller lock; a few threads keep slow clients from queueing fast ones.
_WORKERS = 8


def serve(
    controller: Controller,
    address: str = DEFAULT_ADDRESS,
    *,
    lock: AbstractContextManager[Any] | None = None,
    bundles: BundleStore | None = None,
    clock: Callable[[], float] = wall_ms,
) -> grpc.Server:
    """Start a server for `controller` on `address` (insecure: bind it to loopback or a private network).

    Pass the `lock` every other caller of the controller takes; without one the server makes its own, which
    is only right when nothing else calls the controller. `clock` is the time operator calls happen at (the
    wall clock's epoch ms; tests pass their own). Stop the server with `server.stop(grace)`.
    """
    # Without SO_REUSEPORT a second server on a taken port fails here instead of silently sharing its traffic.
    executor = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="mn-grpc")
    server = grpc.server(executor, options=[("grpc.so_reuseport", 0)])
    service = JobService(controller, lock or threading.Lock(), bundles or MemoryBundleStore(), clock)
    add_JobServiceServicer_to_server(service, server)
    try:
        server.add_insecure_port(address)
    except RuntimeError:
        executor.shutdown(wait=False)
        raise
    server.start()
    return server
