"""A redis-server child process on a free loopback port: for the test suite, the benchmark and demos.

It persists nothing unless asked (`appendonly=True`), and `kill()` is a real SIGKILL, so durability can be
tested by restarting on the same directory.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType

import redis

from backends.loopback import free_port

START_TIMEOUT_S = 10.0


def executable() -> str | None:
    return shutil.which("redis-server")


class LocalRedisServer:
    """Start with `start()` or as a context manager; `url` is what `client.connect` takes."""

    def __init__(self, directory: Path, *, appendonly: bool = False, port: int | None = None) -> None:
        exe = executable()
        if exe is None:
            raise FileNotFoundError("redis-server is not installed (apt-get install -y redis-server)")
        self._exe = exe
        self.directory = directory
        self.appendonly = appendonly
        self.port = port or free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start and wait until PING answers; fail with the server's log if it exits or stays silent."""
        self.directory.mkdir(parents=True, exist_ok=True)
        log = self.directory / "redis.log"
        args = [self._exe, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)]
        args += ["--save", "", "--appendonly", "yes" if self.appendonly else "no", "--logfile", str(log)]
        # Its own session: a Ctrl-C meant for the owner (`dev up`) must not stop Redis before the owner's other
        # children, which still need it to shut down cleanly.
        self._process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True
        )
        probe = redis.Redis(port=self.port, socket_timeout=1.0, socket_connect_timeout=1.0, protocol=2)
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while True:
                if self._process.poll() is not None:
                    raise RuntimeError(f"redis-server exited: {_tail(log)}")
                try:
                    probe.ping()
                    return
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        self.stop()
                        raise RuntimeError(f"redis-server did not answer PING: {_tail(log)}") from None
                    time.sleep(0.01)
        finally:
            probe.close()

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, so only what the server already wrote survives."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def __enter__(self) -> LocalRedisServer:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
