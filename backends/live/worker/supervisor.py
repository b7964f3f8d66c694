"""One instance on a worker: its working directory, its process through restarts, and its checks.

The facts it reports, in order:
- `placed` when the worker takes the placement (`restarted` instead when a restarted worker takes up an instance
  its predecessor ran: that process died with it);
- `running` and `ready` together as soon as the process has started. Ready means the process is up; whether the
  agent serves is what its checks say, and `health_check: checks` waits for them;
- `check_passing` / `check_failing` when a check's result changes (the first result counts as a change);
- `exited` when the process ends, then `restarted` before the next start after `restart.delay_ms`, or `failed`
  once `restart.attempts` restarts are used up; for a batch placement an exit with status 0 is `completed`
  instead, and the instance is done. A command that cannot be executed exits with 127 like any other;
  `failed` comes at once when `config.command` is not a list of strings (without NUL bytes, which no argument can
  hold) or the payloads cannot be had or written.
A stopped instance reports nothing more. `resync` reports the current state again.

`announce`, when given, is told what the process does whenever that changes (never per check), under the lock
so the announcements keep their order: starting, running (with its pid and port), exited, failed, and None
once the instance completed; `announce_again` tells it once more. The worker keeps it in Redis for
`deployment status`.

`serving` tells the worker, which renews the instance's discovery entry, whether the process runs now, which run
it is, and the port it serves on: the port its first `http` check probes, else its first `tcp` check's, else none
(an agent declares no port of its own; the one in PORT is the default every check probes).

The process's stdout and stderr are pipes the worker reads into the instance's log (logs.py), one for all its
runs: each start, restart and exit is noted there, after the last line of the run that ended.

What an agent gets of the worker is only what it needs (docs/live.md, "What an agent gets"), so a secret in the
worker's environment (a Redis password, a signing key) and another instance's files stay out of its reach:
- its own directory, 0700, removed when the instance ends: `bundle/` holds the payloads (files 0600, directories
  0700) and is the working directory, `home/` and `tmp/` are its HOME and TMPDIR;
- an environment of PATH (the worker's: which programs a command name finds is the operator's choice, and holds
  no secret), LANG=C.UTF-8, what the node's `config.env` declares, then HOME, TMPDIR, PORT and the `MN_*`
  deployment variables; nothing else of the worker's.
With an `AgentUser` (`agent worker --run-as USER`), the directory and everything in it belong to that user, and
the agent and its exec checks run as that user, with its primary group only, so an agent can touch neither the
worker's files nor another user's.
"""

from __future__ import annotations

import itertools
import logging
import os
import pwd
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from backends.live.clock import wall_ms
from backends.live.worker.checks import Check, declared_checks, probe
from backends.live.worker.logs import NodeLogs, file_name
from backends.loopback import reserved_port
from backends.process import ProcessGroup
from backends.protocol.bundles import UnsafePayloadPathError, check_payload_paths
from backends.redis.instance_runtime import EXITED, FAILED, RUNNING, STARTING, ProcessInfo
from mn_deploy_core.manifest_problems import env_problems
from mn_deploy_core.ports import Fact, FactKind, Placement

Payloads = Callable[[str], Mapping[str, bytes] | None]
Announce = Callable[[ProcessInfo | None], None]

_CANNOT_RUN = 127  # the shell's code for a command that cannot be executed
_PRIVATE_DIRECTORY = 0o700
_PRIVATE_FILE = 0o600
# What the process does after each lifecycle fact that `_lifecycle` reports.
_PROCESS_STATES = {FactKind.PLACED: STARTING, FactKind.RESTARTED: STARTING, FactKind.FAILED: FAILED}

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Generation:
    """One run of the process: its checks stop with it, and their results are forgotten after it."""

    ended: threading.Event = field(default_factory=threading.Event)
    results: dict[str, bool] = field(default_factory=dict)
    threads: list[threading.Thread] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class AgentUser:
    """The user agents run as instead of the worker's (which must then be root)."""

    name: str
    uid: int
    gid: int

    @classmethod
    def named(cls, name: str) -> AgentUser:
        """Raises ValueError when this host has no such user."""
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise ValueError(f"no user {name!r} on this host") from None
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid)

    @property
    def ids(self) -> tuple[int, int]:
        return self.uid, self.gid

    def blocked_at(self, path: Path) -> Path | None:
        """The first directory on the way to `path` this user may not search, or None: an agent's HOME and TMPDIR
        are under the worker's workdir, so it must reach the workdir. Only the part that exists is looked at."""
        resolved = path.resolve()
        for directory in (*reversed(resolved.parents), resolved):
            if not directory.exists():
                return None
            found = directory.stat()  # the owner's bits count for its owner, the group's for its group (POSIX)
            bit = 0o100 if found.st_uid == self.uid else 0o010 if found.st_gid == self.gid else 0o001
            if not found.st_mode & bit:
                return directory
        return None


@dataclass(frozen=True, slots=True)
class InstanceDirectory:
    """An instance's own directory (see the module's docstring), removed whole when the instance ends."""

    root: Path

    @property
    def bundle(self) -> Path:
        return self.root / "bundle"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"


@dataclass(frozen=True, slots=True)
class Serving:
    """A running process: `run` counts the starts of the instance (a restart is a new run)."""

    run: int
    port: int | None


class InstanceSupervisor:
    """Runs one placement in its own thread until it is stopped or fails."""

    def __init__(
        self,
        placement: Placement,
        *,
        root: Path,
        payloads: Payloads,
        report: Callable[[Fact], None],
        grace_s: float,
        logs: NodeLogs,
        adopted: bool = False,
        announce: Announce | None = None,
        user: AgentUser | None = None,
    ) -> None:
        """`user`: who the agent runs as (None: the worker's user)."""
        self.placement = placement
        self._user = None if user is None else user.ids
        self._logs = logs
        self._root = root
        self._payloads = payloads
        self._report = report
        self._grace_s = grace_s
        self._adopted = adopted
        self._checks = declared_checks(placement.node, placement.checks)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._state = FactKind.PLACED
        self._child: ProcessGroup | None = None
        self._generation = _Generation()
        self._serving: Serving | None = None
        self._runs = 0
        self._announce = announce
        self._process: ProcessInfo | None = None
        self._restarts = 0
        self._thread = threading.Thread(target=self._run, name=f"instance {placement.instance_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """SIGTERM now, SIGKILL after the grace period; returns at once (`join` waits for the end)."""
        with self._lock:
            self._stopping.set()
            if self._child is not None:
                self._child.terminate(self._grace_s)

    def join(self, timeout_s: float | None = None) -> None:
        self._thread.join(timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def serving(self) -> Serving | None:
        """The running process, or None while it does not run (starting, exited, restarting, failed, stopped)."""
        with self._lock:
            return None if self._stopping.is_set() else self._serving

    def resync(self) -> None:
        """Report the current state again, with the latest result of every check while running."""
        with self._lock:
            if self._stopping.is_set():
                return
            self._fact(self._state)
            if self._state is FactKind.RUNNING:
                self._fact(FactKind.READY)
                for name, passing in self._generation.results.items():
                    self._fact(FactKind.CHECK_PASSING if passing else FactKind.CHECK_FAILING, name)

    def announce_again(self) -> None:
        """Announce what the process does now once more (its entry in Redis was lost or cleared)."""
        with self._lock:
            if self._announce is not None and self._process is not None and not self._stopping.is_set():
                self._announce(self._process)

    # ---- the instance's thread -----------------------------------------------------------------

    def _run(self) -> None:
        self._log = self._logs.open(self.placement)
        try:
            self._live()
        finally:
            self._log.close()

    def _live(self) -> None:
        self._lifecycle(FactKind.RESTARTED if self._adopted else FactKind.PLACED, FactKind.PLACED)
        command = self.placement.node.get("config", {}).get("command")
        directory = self._prepare(command)
        if directory is None:
            self._lifecycle(FactKind.FAILED)
            return
        try:
            for restarts in itertools.count():
                if restarts:
                    if self._stopping.wait(self.placement.restart.delay_ms / 1000):
                        return
                    self._lifecycle(FactKind.RESTARTED, FactKind.EXITED)
                    self._log.note(f"restart {restarts} of {self.placement.restart.attempts}")
                code = self._run_once(command, directory)
                if code is None or self._completes(code):
                    return
                if restarts >= self.placement.restart.attempts:
                    self._lifecycle(FactKind.FAILED)
                    return
        finally:
            shutil.rmtree(directory.root, ignore_errors=True)

    def _prepare(self, command: object) -> InstanceDirectory | None:
        """A fresh directory holding the payloads; None (and logged) when the instance can never run."""
        instance_id = self.placement.instance_id
        if not (isinstance(command, list) and command and all(isinstance(a, str) and "\0" not in a for a in command)):
            log.error(
                "instance %s: config.command must be a non-empty list of strings without NUL bytes, not %r",
                instance_id,
                command,
            )
            return None
        # validated with the manifest; checked again as a placement could come from elsewhere than a controller
        problems = env_problems(
            f"agent {self.placement.agent_id}", self.placement.node.get("config", {}).get("env", {})
        )
        if problems:
            log.error("instance %s: %s", instance_id, "; ".join(problems))
            return None
        payloads: Mapping[str, bytes] = {}
        if self.placement.bundle is not None:
            found = self._payloads(self.placement.bundle)
            if found is None:
                log.error("instance %s: bundle %s is not stored", instance_id, self.placement.bundle)
                return None
            payloads = found
        prefix = f"{file_name(instance_id)}."
        directory = InstanceDirectory(Path(tempfile.mkdtemp(prefix=prefix, dir=self._root)))  # 0700
        try:
            directory.home.mkdir(mode=_PRIVATE_DIRECTORY)
            directory.tmp.mkdir(mode=_PRIVATE_DIRECTORY)
            materialise(payloads, directory.bundle)
            if self._user is not None:
                _give(directory.root, *self._user)
        except (UnsafePayloadPathError, OSError) as error:
            log.error("instance %s: payloads not written: %s", instance_id, error)
            shutil.rmtree(directory.root, ignore_errors=True)
            return None
        return directory

    def _completes(self, code: int | None) -> bool:
        """R3b: a batch agent that exits 0 is done, not crashed."""
        return self.placement.batch and code == 0

    def _run_once(self, command: Sequence[str], directory: InstanceDirectory) -> int | None:
        """Start the process and its checks and wait for its end: its exit code (127 when it could not be
        run), or None when it ended because of a stop.

        Each start gets a new PORT, reserved for the run against this host's other workers and agents
        (backends/loopback.py), so only a port taken by someone else between choosing and binding it costs a
        restart, and one restart, not every one.
        """
        with reserved_port() as port:
            return self._run_on(port, command, directory)

    def _run_on(self, port: int, command: Sequence[str], directory: InstanceDirectory) -> int | None:
        env = agent_environment(self.placement, directory, port)
        with self._lock:
            if self._stopping.is_set():
                return None
            with self._log.run() as (stdout, stderr):
                try:
                    self._child = ProcessGroup(
                        command, cwd=directory.bundle, env=env, output=stdout, errors=stderr, user=self._user
                    )
                except OSError as error:  # cannot be run: as good as exiting at once
                    log.warning("instance %s: %s", self.placement.instance_id, error)
                    self._log.note(f"not started: {error}")
            if self._child is not None:
                self._log.note(f"run {self._runs + 1} started, pid {self._child.pid}")
                self._state = FactKind.RUNNING
                self._runs += 1
                self._serving = Serving(self._runs, self._served_port(port))
                self._fact(FactKind.RUNNING)
                self._fact(FactKind.READY)
                self._process_is(RUNNING, self._child.pid, self._serving.port)
                self._generation = _Generation()
                for check in self._checks:
                    self._watch(check, self._generation, port, directory.bundle, env)
        code = _CANNOT_RUN if self._child is None else self._child.wait()
        self._log.ended(code)
        with self._lock:
            generation, self._child, self._serving = self._generation, None, None
            generation.ended.set()
            stopped = self._stopping.is_set()
            if not stopped:
                self._state = FactKind.COMPLETED if self._completes(code) else FactKind.EXITED
                self._fact(self._state)
                self._process_is(None if self._state is FactKind.COMPLETED else EXITED)
        for thread in generation.threads:  # a check still probing ends within its timeout
            thread.join()
        return None if stopped else code

    def _served_port(self, port: int) -> int | None:
        for kind in ("http", "tcp"):
            for check in self._checks:
                if check.type == kind:
                    return check.port or port
        return None

    def _watch(self, check: Check, generation: _Generation, port: int, directory: Path, env: Mapping[str, str]) -> None:
        def loop() -> None:
            while True:
                passing = probe(check, port=port, cwd=directory, env=env, user=self._user)
                with self._lock:
                    if generation.ended.is_set():
                        return
                    if generation.results.get(check.name) != passing:
                        generation.results[check.name] = passing
                        self._fact(FactKind.CHECK_PASSING if passing else FactKind.CHECK_FAILING, check.name)
                if generation.ended.wait(check.interval_s):
                    return

        thread = threading.Thread(target=loop, name=f"check {check.name} of {self.placement.instance_id}", daemon=True)
        generation.threads.append(thread)
        thread.start()

    def _lifecycle(self, kind: FactKind, state: FactKind | None = None) -> None:
        """Report a lifecycle fact unless stopping; `state` is what resync repeats (default: the fact itself)."""
        with self._lock:
            if self._stopping.is_set():
                return
            self._state = state or kind
            self._fact(kind)
            if kind is FactKind.RESTARTED:
                self._restarts += 1
            self._process_is(_PROCESS_STATES[kind])

    def _process_is(self, state: str | None, pid: int | None = None, port: int | None = None) -> None:
        """Announce what the process does now (None: the instance completed); called under the lock."""
        if self._announce is None:
            return
        self._process = None if state is None else ProcessInfo(state, wall_ms(), self._restarts, pid, port)
        self._announce(self._process)

    def _fact(self, kind: FactKind, check: str = "") -> None:
        self._report(Fact(self.placement.instance_id, kind, check))


def agent_environment(placement: Placement, directory: InstanceDirectory, port: int) -> dict[str, str]:
    """All an agent's process is given (see the module's docstring); `config.env` cannot name what follows it."""
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "LANG": "C.UTF-8",
        **placement.node.get("config", {}).get("env", {}),
        "HOME": str(directory.home),
        "TMPDIR": str(directory.tmp),
        "MN_AGENT_ID": placement.agent_id,
        "MN_INSTANCE_ID": placement.instance_id,
        "MN_DEPLOYMENT_KEY": placement.deployment_key,
        "MN_DEPLOYMENT_VERSION": placement.deployment_version,
        "MN_DEPLOYMENT_ROLE": str(placement.role),
        "MN_BUNDLE_DIR": str(directory.bundle),
        "PORT": str(port),
    }


def materialise(payloads: Mapping[str, bytes], directory: Path) -> None:
    """Write payloads under a new `directory` (made here): directories 0700, files 0600, so only the agent's user
    reads them (a payload is data its command names, never run by itself). Paths are checked first (relative, no
    `..`); as the directory is new and only this writes into it, there is no symlink a path could escape through,
    and a file is created, never opened if it exists."""
    check_payload_paths(payloads)
    directory.mkdir(mode=_PRIVATE_DIRECTORY)
    for path, data in payloads.items():
        target = directory / path
        parent = directory
        for part in Path(path).parent.parts:
            parent /= part
            parent.mkdir(mode=_PRIVATE_DIRECTORY, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, _PRIVATE_FILE)
        with os.fdopen(fd, "wb") as file:
            file.write(data)


def _give(root: Path, uid: int, gid: int) -> None:
    """Make `root` and everything under it (which only the worker wrote: no symlinks) belong to uid:gid."""
    os.chown(root, uid, gid, follow_symlinks=False)
    for directory, subdirectories, files in os.walk(root):
        for name in (*subdirectories, *files):
            os.chown(os.path.join(directory, name), uid, gid, follow_symlinks=False)
