"""A controller behind a real gRPC server on a loopback port, over the scripted world, and the CLI pointed at it.

The test feeds instance facts itself (`settle`), or lets a driver thread do it while a command runs (`driving`),
standing in for the daemon's real-time driver.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from click.testing import CliRunner, Result

from backends.live.controller import serve
from backends.live.controller.bundles import MemoryBundleStore
from backends.loopback import free_port
from backends.protocol import job_pb2_grpc
from backends.protocol.credentials import TOKEN_ENV, TOKEN_FILE_ENV
from mn_deploy.cli import main
from tests.scripted import World

Step = Callable[[World], None]


@dataclass
class Cli:
    """The CLI pointed at a controller, with the file of the token it requires if it requires one."""

    target: str
    token_file: Path | None = field(default=None, kw_only=True)

    def auth_env(self) -> dict[str, str | None]:
        """The token variables as a user sets them for this controller (none set for one that needs none)."""
        token_file = str(self.token_file) if self.token_file is not None else None
        return {TOKEN_ENV: None, TOKEN_FILE_ENV: token_file}

    def cli(self, *args: str, env: Mapping[str, str | None] | None = None) -> Result:
        """`mn-deploy deployment ARGS` in-process; CliRunner's stdout is no terminal, so output is plain."""
        environment = {"MN_GRPC_TARGET": self.target, "MN_CLI_OUTPUT": None, **self.auth_env(), **(env or {})}
        return CliRunner().invoke(main, ["deployment", *args], env=environment)


@dataclass
class Stack(Cli):
    """The CLI pointed at an in-process server over a scripted world the test moves on."""

    world: World
    lock: threading.Lock
    bundles: MemoryBundleStore

    def settle(self) -> None:
        """Every placed instance comes up healthy and time runs until nothing is pending."""
        with self.lock:
            self.world.converge()

    def record(self, id_or_key: str) -> dict[str, Any]:
        with self.lock:
            return self.world.record(id_or_key).to_json()

    def deployment_ids(self) -> list[str]:
        with self.lock:
            return sorted(r.deployment_id for r in self.world.controller.list())

    @contextmanager
    def driving(self, step: Step = World.converge) -> Iterator[None]:
        """Apply `step` to the world under the lock, over and over, until the block ends; re-raise its error."""
        stop, errors = threading.Event(), []

        def drive() -> None:
            try:
                while not stop.wait(0.005):
                    with self.lock:
                        step(self.world)
            except Exception as error:  # surfaced in the test's thread below
                errors.append(error)

        thread = threading.Thread(target=drive, name="scripted-driver", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
        if errors:
            raise errors[0]


@pytest.fixture
def stack() -> Iterator[Stack]:
    world, lock, bundles = World(), threading.Lock(), MemoryBundleStore()
    world.clock.now = time.time() * 1000.0  # the live controller's clock: ms since the epoch
    target = f"127.0.0.1:{free_port()}"
    server = serve(world.controller, target, lock=lock, bundles=bundles, clock=world.clock)
    yield Stack(target, world, lock, bundles)
    server.stop(None).wait()


@contextmanager
def serving(servicer: job_pb2_grpc.JobServiceServicer) -> Iterator[Cli]:
    """The CLI pointed at a server of `servicer`, a stand-in for the controller's service."""
    target = f"127.0.0.1:{free_port()}"
    server = grpc.server(ThreadPoolExecutor(max_workers=16))  # calls a servicer leaves hanging hold a thread each
    job_pb2_grpc.add_JobServiceServicer_to_server(servicer, server)
    server.add_insecure_port(target)
    server.start()
    try:
        yield Cli(target)
    finally:
        server.stop(None).wait()


def write_bundle(root: Path, manifest: Any, payloads: Mapping[str, bytes] | None = None) -> Path:
    """A bundle directory: manifest.json (a document, or raw text) and payloads/."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "manifest.json").write_text(manifest if isinstance(manifest, str) else json.dumps(manifest))
    for name, data in (payloads or {}).items():
        path = root / "payloads" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root
