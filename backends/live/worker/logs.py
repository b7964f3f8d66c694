"""Instance logs on a worker: each instance's stdout and stderr in its own rotated file, and in Redis for the CLI.

The worker reads the agent's two pipes itself (one thread per stream and run) instead of handing the child a
file: a file a child writes to cannot be rotated safely, and the worker must tell the streams apart. A reader only
splits lines, appends them to the instance's file and queues them for Redis; it never waits on Redis, so an agent
writing fast, or a Redis that is slow or gone, never fills the agent's pipe and never stalls it.

Bounds (docs/live.md "Instance logs"):
- a file holds at most `FILE_MAX_BYTES`; the next line rotates it to `<name>.log.1` (the older `.1` to `.2`, the
  oldest dropped), so an instance keeps at most `FILE_MAX_BYTES * (FILE_BACKUPS + 1)` on disk;
- a line longer than `LINE_MAX_BYTES` is cut into lines of that length;
- Redis keeps about `LINES_KEPT` lines per instance (XADD MAXLEN ~); the stream and the version's index of logged
  instances expire `LOG_TTL_MS` after the last line, and files untouched as long are removed when a worker starts;
- at most `QUEUED_MAX` lines wait for Redis; beyond that the oldest are not sent (the file has them) and the
  stream says how many.
Each line carries its stream: `stdout`, `stderr`, or `worker` for what the worker notes (a start, a restart, an
exit).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import redis

from backends.live.clock import wall_ms
from backends.redis.keys import Keys
from mn_deploy_core.ports import Placement

FILE_MAX_BYTES = 1024 * 1024
FILE_BACKUPS = 2
LINE_MAX_BYTES = 16 * 1024
LINES_KEPT = 1000
LOG_TTL_MS = 7 * 24 * 3600 * 1000
QUEUED_MAX = 10_000
RETRY_S = 1.0  # between tries while Redis does not answer
DRAIN_S = 2.0  # how long an ended run's pipes are read on, for a process that left its group

STDOUT, STDERR, WORKER = "stdout", "stderr", "worker"

_UNSAFE_NAME = re.compile(r"[^\w.-]")
_CHUNK = 64 * 1024

log = logging.getLogger(__name__)


def file_name(instance_id: str) -> str:
    """An instance id as a file name any file system takes (ids may hold any character), for its log file and
    its directory alike."""
    return _UNSAFE_NAME.sub("_", instance_id)


@dataclass(frozen=True, slots=True)
class LogLine:
    stream: str
    text: str
    t_ms: float


@dataclass(frozen=True, slots=True)
class LogSource:
    """Where an instance's lines go in Redis: its stream, and its entry in its version's index."""

    stream_key: str
    index_key: str
    member: str


def log_member(agent_id: str, instance_id: str, node: str) -> str:
    """An instance's entry in its version's index (Keys.version_logs)."""
    return json.dumps({"agent_id": agent_id, "instance_id": instance_id, "node": node}, sort_keys=True)


class RedisLogShipper:
    """Sends the node's queued lines to Redis from one thread, in pipelined batches, retrying while Redis is gone."""

    def __init__(self, client: redis.Redis, *, queued_max: int = QUEUED_MAX) -> None:
        self._client = client
        self._queued_max = queued_max
        self._queue: deque[tuple[LogSource, LogLine]] = deque()
        self._dropped: dict[LogSource, int] = {}  # lines not sent since the last note of it
        self._ready = threading.Condition()
        self._closing = False
        self._failing = False
        self._thread = threading.Thread(target=self._run, name="log shipper", daemon=True)
        self._thread.start()

    def put(self, source: LogSource, line: LogLine) -> None:
        """Queue a line; never waits. A full queue gives up its oldest line and counts it as not sent."""
        with self._ready:
            self._queue.append((source, line))
            self._bound()
            self._ready.notify()

    def close(self, timeout_s: float = 5.0) -> None:
        """Send what is queued (one try if Redis does not answer), then stop."""
        with self._ready:
            self._closing = True
            self._ready.notify()
        self._thread.join(timeout_s)

    def _bound(self) -> None:
        while len(self._queue) > self._queued_max:
            source, _ = self._queue.popleft()
            self._dropped[source] = self._dropped.get(source, 0) + 1

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._queue and not self._dropped and not self._closing:
                    self._ready.wait()
                if not self._queue and not self._dropped:
                    return
                batch, dropped = list(self._queue), self._dropped
                self._queue.clear()
                self._dropped = {}
                closing = self._closing
            now = wall_ms()
            notes = [(source, LogLine(WORKER, _not_sent(count), now)) for source, count in dropped.items()]
            try:
                self._send(notes + batch)
                self._failing = False
            except redis.RedisError as error:
                if closing:
                    log.warning("%d log lines not sent to Redis at shutdown (%s); files have them", len(batch), error)
                    return
                if not self._failing:  # once per outage
                    log.warning("log lines not sent to Redis (%s); retrying every %g s", error, RETRY_S)
                    self._failing = True
                with self._ready:  # the counts stay counts: a note is written once it can be sent
                    for source, count in dropped.items():
                        self._dropped[source] = self._dropped.get(source, 0) + count
                    self._queue.extendleft(reversed(batch))
                    self._bound()
                    retry_at = time.monotonic() + RETRY_S  # new lines do not hasten it; a close does, for a last try
                    while not self._closing and (left := retry_at - time.monotonic()) > 0:
                        self._ready.wait(left)

    def _send(self, batch: list[tuple[LogSource, LogLine]]) -> None:
        pipe = self._client.pipeline(transaction=False)
        last: dict[LogSource, float] = {}
        for source, line in batch:
            fields = {"stream": line.stream, "line": line.text, "t_ms": f"{line.t_ms:.0f}"}
            pipe.xadd(source.stream_key, fields, maxlen=LINES_KEPT, approximate=True)
            last[source] = line.t_ms
        for source, t_ms in last.items():
            pipe.pexpire(source.stream_key, LOG_TTL_MS)
            pipe.zadd(source.index_key, {source.member: t_ms})
            pipe.zremrangebyscore(source.index_key, "-inf", f"({t_ms - LOG_TTL_MS:.0f}")
            pipe.pexpire(source.index_key, LOG_TTL_MS)
        pipe.execute()


def _not_sent(count: int) -> str:
    return f"{count} lines not sent to Redis (the worker's queue was full); the node's log file has them"


class NodeLogs:
    """A worker's instance logs: files under `directory`, lines to Redis through one shipper (none: files only)."""

    def __init__(self, directory: Path, node: str, keys: Keys, shipper: RedisLogShipper | None) -> None:
        self.directory = directory
        self._node = node
        self._keys = keys
        self._shipper = shipper
        directory.mkdir(parents=True, exist_ok=True)
        prune(directory)

    def open(self, placement: Placement) -> InstanceLog:
        instance_id = placement.instance_id
        shipper = self._shipper
        if shipper is None:
            return InstanceLog(instance_id, self.directory, lambda line: None)
        source = LogSource(
            self._keys.instance_log(instance_id),
            self._keys.version_logs(placement.deployment_key, placement.deployment_version),
            log_member(placement.agent_id, instance_id, self._node),
        )
        return InstanceLog(instance_id, self.directory, lambda line: shipper.put(source, line))

    def close(self) -> None:
        """After every instance log ended: what is queued goes to Redis."""
        if self._shipper is not None:
            self._shipper.close()


class InstanceLog:
    """One instance's log through its restarts: its file, rotated, and its lines queued for Redis."""

    def __init__(
        self,
        instance_id: str,
        directory: Path,
        sink: Callable[[LogLine], None],
        *,
        max_bytes: int = FILE_MAX_BYTES,
        backups: int = FILE_BACKUPS,
    ) -> None:
        if max_bytes < 1 or backups < 0:
            raise ValueError("max_bytes must be positive and backups not negative")
        self.instance_id = instance_id
        self.path = directory / f"{file_name(instance_id)}.log"
        self._sink = sink
        self._max_bytes = max_bytes
        self._backups = backups
        self._lock = threading.Lock()
        directory.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] | None = self.path.open("ab")
        self._size = self.path.stat().st_size
        self._readers: list[threading.Thread] = []

    def note(self, text: str) -> None:
        """A line of the worker's own: a start, a restart, an exit."""
        self._line(WORKER, text)

    @contextmanager
    def run(self) -> Iterator[tuple[int, int]]:
        """Two pipes for a run to start with, as (stdout, stderr) write ends for the child; once the child has
        them (or could not be started) the worker closes its copies and reads the other ends to their end."""
        pipes = [os.pipe(), os.pipe()]
        try:
            yield pipes[0][1], pipes[1][1]
        finally:
            for _, write in pipes:
                os.close(write)
            self._readers = [
                threading.Thread(
                    target=self._read, args=(read, name), name=f"{name} of {self.instance_id}", daemon=True
                )
                for (read, _), name in zip(pipes, (STDOUT, STDERR), strict=True)
            ]
            for reader in self._readers:
                reader.start()

    def ended(self, code: int | None) -> None:
        """The run ended with `code`: its last lines are read (its process group is gone, so the pipes end at
        once, unless a process that left the group holds them: that one is not waited for long), then noted."""
        deadline = time.monotonic() + DRAIN_S
        for reader in self._readers:
            reader.join(max(0.0, deadline - time.monotonic()))
            if reader.is_alive():
                log.warning("instance %s: %s still open after its run ended", self.instance_id, reader.name)
        self.note(f"exited with code {code}")

    def close(self) -> None:
        """No more lines go to the file (a straggler's are dropped)."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def _read(self, fd: int, stream: str) -> None:
        """Lines as they come; a line longer than LINE_MAX_BYTES is cut, so what waits for its end stays bounded."""
        pending = b""
        with os.fdopen(fd, "rb", buffering=0) as pipe:
            while chunk := pipe.read(_CHUNK):
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    for start in range(0, max(len(line), 1), LINE_MAX_BYTES):
                        self._line(stream, _text(line[start : start + LINE_MAX_BYTES]))
                while len(pending) > LINE_MAX_BYTES:
                    self._line(stream, _text(pending[:LINE_MAX_BYTES]))
                    pending = pending[LINE_MAX_BYTES:]
        if pending:
            self._line(stream, _text(pending))

    def _line(self, stream: str, text: str) -> None:
        line = LogLine(stream, text, wall_ms())
        stamp = datetime.fromtimestamp(line.t_ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        data = f"{stamp} {line.stream} {line.text}\n".encode(errors="replace")
        with self._lock:
            if self._file is None:
                return
            if self._size and self._size + len(data) > self._max_bytes:
                self._rotate()
            self._file.write(data)
            self._file.flush()
            self._size += len(data)
            self._sink(line)

    def _rotate(self) -> None:
        assert self._file is not None
        self._file.close()
        if self._backups:
            for n in range(self._backups, 1, -1):
                older = self.path.with_name(f"{self.path.name}.{n - 1}")
                if older.exists():
                    os.replace(older, self.path.with_name(f"{self.path.name}.{n}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self._file = self.path.open("wb")
        self._size = 0


def prune(directory: Path, older_than_ms: float = LOG_TTL_MS) -> list[Path]:
    """Remove log files not written for `older_than_ms` (of instances long gone); what was removed."""
    cutoff = time.time() - older_than_ms / 1000
    removed = []
    for path in directory.glob("*.log*") if directory.is_dir() else ():
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed.append(path)
        except OSError as error:
            log.warning("log %s not pruned: %s", path, error)
    return removed


def _text(raw: bytes) -> str:
    return raw.removesuffix(b"\r").decode(errors="replace")
