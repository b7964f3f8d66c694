"""A redis-server child process on a free loopback port: for the test suite, the benchmark and demos.

It persists nothing unless asked (`appendonly=True`: an append-only file in its directory, fsynced every second),
and `kill()` is a real SIGKILL, so durability can be tested by restarting on the same directory and port. It dies
with the thread that started it (backends.process.ProcessGroup): a test run or `dev up` killed outright
leaves no redis-server behind.

With a `password` it requires one (`requirepass`, for the `default` user), and with `tls` it speaks only TLS; both
go into a configuration file only its owner can read (0600), never onto its command line, where `ps` shows them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import quote, urlencode

import redis

from backends.loopback import LOOPBACK, free_port
from backends.process import ProcessGroup
from backends.redis.client import connect
from backends.secret_files import write_secret

START_TIMEOUT_S = 10.0
STOP_GRACE_S = 5.0
# The prefix of each line redis-server logs: `<pid>:<role> <day> <month> <year> <time> <level> `.
_LOG_PREFIX = re.compile(r"^\d+:[A-Z] \d+ \w+ \d+ [\d:.]+ [.*#-] ")


def executable() -> str | None:
    return shutil.which("redis-server")


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """The server's certificate and key, and the CA that signed it (which clients trust through the URL)."""

    cert: Path
    key: Path
    ca: Path


class LocalRedisServer:
    """Start with `start()` or as a context manager; `url` is what `client.connect` takes."""

    def __init__(
        self,
        directory: Path,
        *,
        appendonly: bool = False,
        port: int | None = None,
        password: str | None = None,
        tls: TlsFiles | None = None,
    ) -> None:
        exe = executable()
        if exe is None:
            raise FileNotFoundError("redis-server is not installed (apt-get install -y redis-server)")
        self._exe = exe
        self.directory = directory
        self.appendonly = appendonly
        self.port = port or free_port()
        self.password = password
        self.tls = tls
        self._process: ProcessGroup | None = None

    @property
    def url(self) -> str:
        """With the password, if any (show `client.masked_url(url)` to people), and over TLS the CA to trust."""
        secret = f":{quote(self.password, safe='')}@" if self.password else ""
        if self.tls is None:
            return f"redis://{secret}{LOOPBACK}:{self.port}/0"
        return f"rediss://{secret}{LOOPBACK}:{self.port}/0?{urlencode({'ssl_ca_certs': self.tls.ca})}"

    def start(self) -> None:
        """Start and wait until PING answers; fail with the last line it logged if it exits or stays silent."""
        self.directory.mkdir(parents=True, exist_ok=True)
        log = self.directory / "redis.log"
        args = [self._exe, str(self._write_config()), "--bind", LOOPBACK, "--dir", str(self.directory)]
        args += ["--save", "", "--logfile", str(log), *self._persistence()]
        # Its own session: a Ctrl-C meant for the owner (`dev up`) must not stop Redis before the owner's other
        # children, which still need it to shut down cleanly.
        self._process = ProcessGroup(args, cwd=self.directory, env=os.environ, output=subprocess.DEVNULL)
        probe = connect(self.url, socket_timeout=1.0, connect_timeout=1.0, retries=0)
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while True:
                if self._process.wait(0) is not None:
                    raise RuntimeError(f"redis-server exited: {_last_entry(log)}")
                try:
                    probe.ping()
                    return
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        self.stop()
                        raise RuntimeError(f"redis-server did not answer PING: {_last_entry(log)}") from None
                    time.sleep(0.01)
        finally:
            probe.close()

    def _write_config(self) -> Path:
        """The port, password and TLS files, in a file made 0600 before anything is written to it."""
        lines = [f"port {self.port}"]
        if self.tls is not None:
            lines = ["port 0", f"tls-port {self.port}", "tls-auth-clients no"]
            lines += [f"tls-cert-file {_quoted(self.tls.cert)}", f"tls-key-file {_quoted(self.tls.key)}"]
            lines += [f"tls-ca-cert-file {_quoted(self.tls.ca)}"]
        if self.password is not None:
            lines.append(f"requirepass {_quoted(self.password)}")
        path = self.directory / "redis.conf"
        write_secret(path, "\n".join(lines) + "\n")
        return path

    def _persistence(self) -> list[str]:
        """Appending each write to the file before replying makes a killed server lose nothing it acknowledged;
        fsyncing every second bounds what a machine crash loses."""
        if not self.appendonly:
            return ["--appendonly", "no"]
        return ["--appendonly", "yes", "--appendfsync", "everysec"]

    def wait(self, timeout_s: float | None = None) -> int | None:
        """The exit code once the server has exited (negative: the signal that killed it); None while it runs
        after `timeout_s`. For an owner that watches it: the server may die by itself."""
        if self._process is None:
            raise RuntimeError("redis-server is not started")
        return self._process.wait(timeout_s)

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, so only what the server already wrote survives."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def stop(self) -> None:
        """SIGTERM, and SIGKILL if it has not exited within STOP_GRACE_S."""
        if self._process is not None:
            self._process.terminate(STOP_GRACE_S)
            self._process.wait()
            self._process = None

    def __enter__(self) -> LocalRedisServer:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def _quoted(value: object) -> str:
    """A value as redis.conf reads it whatever it holds (spaces, quotes): double-quoted, escaped."""
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def _last_entry(log: Path) -> str:
    """Why the server stopped, as one line: it logs the reason last."""
    entries = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
    return _LOG_PREFIX.sub("", entries[-1]) if entries else "(nothing logged)"
