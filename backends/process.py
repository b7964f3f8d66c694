"""Child processes that must not outlive their owner (a worker's agents and exec checks; `dev up`'s redis-server,
controllers and workers), and a directory that must not outlive it either.

Each child leads its own process group: a stop reaches everything it started (SIGTERM, then SIGKILL after a grace
period), and a Ctrl-C meant for the owner's terminal does not reach it. On Linux each child also asks the kernel
for SIGKILL when the thread that started it ends (PR_SET_PDEATHSIG): an owner killed with SIGKILL cannot clean up,
and this is what keeps its children from living on as orphans. The kernel signal reaches the child itself; what
the child started in turn is killed with its group while the owner lives, or by its own death signal.

The request is made by a small Python launcher that then execs the command (the setting survives exec), not
in a `preexec_fn`: that would run Python in a forked copy of the threaded owner, which can deadlock or crash.
A command that cannot be executed exits with 127, as in a shell.

A `ScratchDirectory` is removed by a detached helper when it is closed or when its owner ends, however it ends: a
process killed with SIGKILL cannot remove its own temporary files.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

# argv: the owner's pid, the user to run as ("uid:gid", or "-" for the owner's), then the command. The user is
# taken first: a change of user clears the death signal. PR_SET_PDEATHSIG is 1; prctl is missing off Linux.
_LAUNCHER = f"""
import ctypes, os, sys
if sys.argv[2] != "-":
    uid, gid = map(int, sys.argv[2].split(":"))
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
prctl = getattr(ctypes.CDLL(None), "prctl", None)
if prctl is not None:
    prctl(1, {int(signal.SIGKILL)})
if os.getppid() != int(sys.argv[1]):  # the owner died before the kernel was asked to tell us
    os._exit(1)
try:
    os.execvp(sys.argv[3], sys.argv[3:])
except OSError as error:
    print(f"cannot run {{sys.argv[3]}}: {{error}}", file=sys.stderr)
    os._exit(127)
"""


class ProcessGroup:
    """A child that leads a new session and process group; `wait` from the thread that created it."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        output: int | None = None,
        errors: int | None = None,
        user: tuple[int, int] | None = None,
    ) -> None:
        """Raises OSError when `cwd` is unusable. `output` None inherits the owner's stdout and stderr; `errors`,
        when given, is the child's stderr apart from `output` (a worker keeps the two streams of an agent apart).
        `user`, a (uid, gid), is who the command runs as, with no supplementary groups (the owner must be root);
        None: the owner's user."""
        as_user = "-" if user is None else f"{user[0]}:{user[1]}"
        self._popen = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(os.getpid()), as_user, *argv],
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output if errors is None else errors,
            start_new_session=True,
        )
        self._kill_timer: threading.Timer | None = None

    @property
    def pid(self) -> int:
        return self._popen.pid

    def wait(self, timeout_s: float | None = None) -> int | None:
        """The exit code once the child exits (None if `timeout_s` passes first); what it left in its group
        is killed then, so nothing of it runs on."""
        try:
            code = self._popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return None
        if self._kill_timer is not None:
            self._kill_timer.cancel()
        self._signal(signal.SIGKILL)
        return code

    def terminate(self, grace_s: float) -> None:
        """SIGTERM to the group now and SIGKILL after `grace_s`; returns at once."""
        self._signal(signal.SIGTERM)
        self._kill_timer = threading.Timer(grace_s, self._signal, (signal.SIGKILL,))
        self._kill_timer.daemon = True
        self._kill_timer.start()

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, signum: int) -> None:
        # the group outlives its leader while members remain; once none do, there is nobody to signal
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, signum)


def run_to_exit(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout_s: float,
    user: tuple[int, int] | None = None,
) -> int | None:
    """Run a command to its end (as `user`, see ProcessGroup), output discarded; None when it did not finish in
    time (its group is killed)."""
    child = ProcessGroup(argv, cwd=cwd, env=env, output=subprocess.DEVNULL, user=user)
    code = child.wait(timeout_s)
    if code is None:
        child.kill()
        child.wait()
    return code


# argv: the directory. stdin is a pipe whose write end only the owner holds: end of file means the owner closed
# it or ended. The owner's children may still be writing there while the kernel kills them, hence a few tries.
_REMOVER = """
import os, shutil, sys, time
sys.stdin.buffer.read()
for _ in range(100):
    shutil.rmtree(sys.argv[1], ignore_errors=True)
    if not os.path.lexists(sys.argv[1]):
        break
    time.sleep(0.05)
"""


class ScratchDirectory:
    """A new temporary directory, removed by `close()` or, should this process end first, by a helper right after.

    The helper leads its own session (a closed terminal's SIGHUP does not reach it) and has no death signal: it
    must outlive its owner. It waits for the end of a pipe whose write end is this object's and is inherited by
    no other child (os.pipe's descriptors are not inheritable).
    """

    def __init__(self, prefix: str) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=prefix))
        read, write = os.pipe()
        self._owner_end = os.fdopen(write, "wb")
        try:
            self._helper = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _REMOVER, str(self.path)],
                cwd="/",
                stdin=read,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            os.close(read)

    def close(self) -> None:
        """Remove the directory now (once the helper is done, it is gone)."""
        self._owner_end.close()
        self._helper.wait()
