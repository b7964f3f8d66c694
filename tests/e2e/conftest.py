"""A whole live world per test: redis-server, a controller and two workers as processes, and the official SDK.

Every process a test starts carries a marker in its environment, or (agents, which get none of their worker's
environment) works in a directory under the test's own, so the teardown can prove that nothing is left behind.
Tests wait by polling the state they assert, with a deadline.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from backends.live.devstack import DevStack
from backends.loopback import free_port
from backends.protocol.credentials import TOKEN_FILE_ENV
from backends.redis.server import executable
from mn_deploy.bundle_reader import read_bundle
from mn_deploy.live_cli import mn_deploy_command
from tests.polling import wait_for

BUNDLES = Path(__file__).resolve().parents[2] / "examples" / "bundles"
MARK = "MN_E2E_MARK"
# Short enough that a killed controller or worker is replaced in a couple of seconds.
LEASE_TTL_MS = 1500
NODE_TTL_MS = 1500


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: end-to-end tests with real processes (select with -m e2e)")


@dataclass(frozen=True, slots=True)
class Agent:
    """An agent process some worker runs: its pid, its worker's pid and the MN_* variables it was given."""

    pid: int
    parent: int
    instance_id: str
    agent_id: str
    version: str


def marked(marker: str, root: Path) -> list[int]:
    """Pids of live processes a test started: the marker in their environment, or (agents do not inherit it, and
    redis-server writes its title over its environment) a working directory under the test's `root`. Zombies have
    neither."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (_environment(int(entry.name)).get(MARK) == marker or _inside(entry, root)):
            pids.append(int(entry.name))
    return pids


def _inside(process: Path, root: Path) -> bool:
    try:
        return (process / "cwd").resolve().is_relative_to(root.resolve())
    except OSError:
        return False


def _environment(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:  # gone, or not ours to read
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def _stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (state, parent, ...); none once the pid is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return stat.rsplit(")", 1)[1].split()


def _parent(pid: int) -> int:
    fields = _stat(pid)
    return int(fields[1]) if fields else 0


def running(pid: int) -> bool:
    """A zombie is not running: it is dead, waiting for its new parent to reap it (in a container, maybe never)."""
    fields = _stat(pid)
    return bool(fields) and fields[0] not in ("Z", "X")


def descendants(pid: int) -> list[int]:
    """Running processes `pid` started, directly or through its children (found only while their parents live)."""
    parents = {int(e.name): _parent(int(e.name)) for e in Path("/proc").iterdir() if e.name.isdigit()}
    found: list[int] = []
    frontier = [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier and running(child)]
        found += children
        frontier = children
    return found


@dataclass
class Live:
    """A running stack seen from outside: the official SDK client of its API, and the processes of the test
    (found by `marker`, or by working directory under `root`); `deploy` reads bundles under `bundles`."""

    client: Any
    marker: str
    root: Path
    bundles: Path = field(default=BUNDLES, kw_only=True)

    def deploy(self, bundle: str, **policy: Any) -> dict[str, Any]:
        read = read_bundle(self.bundles / bundle)
        return dict(json.loads(self.client.deploy_job(read.manifest_json, read.payloads, update_policy=policy)))

    def get(self, id_or_key: str = "hello") -> dict[str, Any]:
        return dict(json.loads(self.client.get_deployment(id_or_key)))

    def settled(self, id_or_key: str = "hello", timeout_s: float = 20.0) -> dict[str, Any]:
        """The deployment once it is neither running nor paused."""
        return dict(
            wait_for(
                lambda: (d := self.get(id_or_key))["status"] not in ("running", "paused") and d,
                timeout_s,
                f"{id_or_key} to settle",
            )
        )

    def agents(self) -> list[Agent]:
        """Agent processes now running, by instance id."""
        found = []
        for pid in marked(self.marker, self.root):
            env = _environment(pid)
            if "MN_INSTANCE_ID" in env:
                found.append(
                    Agent(pid, _parent(pid), env["MN_INSTANCE_ID"], env["MN_AGENT_ID"], env["MN_DEPLOYMENT_VERSION"])
                )
        return sorted(found, key=lambda a: a.instance_id)

    def serving(self, *versions: str) -> list[Agent]:
        """Wait until exactly one agent process per agent id runs, at these versions (stopped ones have gone)."""

        def exact() -> list[Agent] | None:
            agents = self.agents()
            one_each = len({a.agent_id for a in agents}) == len(agents)
            return agents if one_each and sorted(a.version for a in agents) == sorted(versions) else None

        return list(wait_for(exact, what=f"agents at versions {sorted(versions)}"))


@dataclass
class World(Live):
    """A stack the test drives in-process: it can kill and restart the stack's parts."""

    stack: DevStack


@pytest.fixture
def marker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """Set in the environment every process of the test inherits; after the test none may be left."""
    value = uuid.uuid4().hex
    monkeypatch.setenv(MARK, value)
    yield value
    deadline = time.monotonic() + 10.0  # an agent whose worker died is killed by the kernel, a moment later
    while marked(value, tmp_path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not marked(value, tmp_path), f"processes left behind: {marked(value, tmp_path)}"


ENDED_ALONE = re.compile(r"worker exited with code (?!-15$)", re.MULTILINE)
"""A run's end in an instance log other than by the worker's SIGTERM (a stop): a crash, a kill, or a batch agent's
completion."""


@contextmanager
def stack_world(tmp_path: Path, marker: str, **options: Any) -> Iterator[World]:
    """A dev stack of the test's own (its files under `tmp_path/stack`, `options` as DevStack takes them) and the
    official SDK's client of it, with the stack's token; each child's log is printed, for a test that failed, and
    the log of each agent whose run ended on its own (a crash says why there)."""
    from mn_sdk import Client  # after MN_HOME is set: the SDK opens its log file at import

    grpc_address = f"127.0.0.1:{free_port()}"
    stack = DevStack(mn_deploy_command(), grpc_address=grpc_address, workdir=tmp_path / "stack", logs=True, **options)
    client = None
    try:
        stack.start()
        client = Client(target=stack.grpc_address, timeout=10, auth_token=stack.token)
        yield World(client, marker, tmp_path, stack)
    finally:
        if client is not None:
            client.channel.close()
        stack.stop()
        for log in sorted((tmp_path / "stack").glob("*.log")):  # shown by pytest only when the test failed
            print(f"---- {log.name}\n{log.read_text(errors='replace')[-3000:]}")
        for log in sorted((tmp_path / "stack").glob("node-*/logs/*.log")):  # how each run that ended on its own ended
            text = log.read_text(errors="replace")
            if ENDED_ALONE.search(text):
                print(f"---- {log.parent.parent.name}: {log.name}\n{text[-3000:]}")


@pytest.fixture
def world(tmp_path: Path, mn_home: Path, marker: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """The stack, its token in MN_GRPC_AUTH_TOKEN_FILE once it is up, as a user sets it for `mn` and `mn-deploy`."""
    if executable() is None:
        pytest.skip("redis-server is not installed")
    with stack_world(tmp_path, marker, workers=2, lease_ttl_ms=LEASE_TTL_MS, node_ttl_ms=NODE_TTL_MS) as world:
        monkeypatch.setenv(TOKEN_FILE_ENV, str(world.stack.token_file))
        yield world


@pytest.fixture
def batch_out(tmp_path: Path) -> Path:
    """Where the batch-hello example's agents write (MN_BATCH_OUT)."""
    directory = tmp_path / "batch-out"
    directory.mkdir()
    return directory


@pytest.fixture
def batch(batch_out: Path, world: World, tmp_path: Path) -> World:
    """The world, deploying a copy of the batch-hello example whose manifests declare MN_BATCH_OUT in each node's
    `config.env` (an agent gets nothing of its worker's environment)."""
    copy = tmp_path / "bundles" / "batch-hello"
    shutil.copytree(BUNDLES / "batch-hello", copy)
    for manifest in copy.glob("*.json"):
        document = json.loads(manifest.read_text())
        for node in document["nodes"]:
            node["config"]["env"] = {"MN_BATCH_OUT": str(batch_out)}
        manifest.write_text(json.dumps(document))
    return replace(world, bundles=copy.parent)
