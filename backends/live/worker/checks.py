"""The service checks a manifest declares (`services[].checks[]`), and one probe of each kind.

- `http`: GET `http://127.0.0.1:<port><path>`; a 2xx answer passes.
- `tcp`: a connection to `127.0.0.1:<port>` is accepted.
- `exec`: `command` (an argv list) exits 0, run in the instance's directory with its environment, as its user.

`port` defaults to the instance's PORT, `path` to `/`, `interval_ms` to 5000 and `timeout_ms` to 2000.
"""

from __future__ import annotations

import http.client
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.loopback import LOOPBACK
from backends.process import run_to_exit

DEFAULT_INTERVAL_MS = 5000
DEFAULT_TIMEOUT_MS = 2000
HOST = LOOPBACK


@dataclass(frozen=True, slots=True)
class Check:
    """One declared check under the name the core knows it by."""

    name: str
    type: str
    interval_s: float
    timeout_s: float
    port: int | None = None
    path: str = "/"
    command: tuple[str, ...] = ()


def declared_checks(node: Mapping[str, Any], names: Sequence[str]) -> list[Check]:
    """The node's checks in manifest order, named as the placement names them (the core's names, in the same
    order), so a fact names the check the core counts."""
    declared = [check for service in node.get("services", []) for check in service.get("checks", [])]
    return [_check(name, spec) for name, spec in zip(names, declared, strict=True)]


def _check(name: str, spec: Mapping[str, Any]) -> Check:
    port = spec.get("port")
    return Check(
        name=name,
        type=str(spec["type"]),
        interval_s=int(spec.get("interval_ms", DEFAULT_INTERVAL_MS)) / 1000,
        timeout_s=int(spec.get("timeout_ms", DEFAULT_TIMEOUT_MS)) / 1000,
        port=None if port is None else int(port),
        path=str(spec.get("path", "/")),
        command=tuple(str(arg) for arg in spec.get("command", ())),
    )


def probe(check: Check, *, port: int, cwd: Path, env: Mapping[str, str], user: tuple[int, int] | None = None) -> bool:
    """Whether the check passes now; any error (refused, timed out, a bad command) is a failure. `user`: who an
    exec check runs as (the agent's user)."""
    target = check.port or port
    try:
        if check.type == "http":
            return _http_ok(target, check.path, check.timeout_s)
        if check.type == "tcp":
            with socket.create_connection((HOST, target), timeout=check.timeout_s):
                return True
        if check.type == "exec":
            return (
                bool(check.command)
                and run_to_exit(check.command, cwd=cwd, env=env, timeout_s=check.timeout_s, user=user) == 0
            )
    except (OSError, http.client.HTTPException):
        return False
    return False


def _http_ok(port: int, path: str, timeout_s: float) -> bool:
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout_s)
    try:
        connection.request("GET", path)
        return 200 <= connection.getresponse().status < 300
    finally:
        connection.close()
