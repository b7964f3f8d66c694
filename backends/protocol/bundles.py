"""Payload bundles on the wire: the payload files of one deploy (POSIX relative path -> bytes), which paths are
safe, and the sha256 fingerprint of their canonical form that names a stored bundle (`bundle:<fingerprint>`).
The CLI checks a bundle before sending it, the controller when it arrives, the worker when it writes it out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath

from mn_deploy_core.errors import DeploymentError
from mn_deploy_core.manifest import digest

# What Linux and macOS file systems hold: a name (NAME_MAX), and a whole path leaving the worker's directory room
# under PATH_MAX (4096).
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 1024
_SHOWN = 100  # characters of a refused path a message shows


class UnsafePayloadPathError(DeploymentError):
    """A payload key that could escape the bundle directory when a worker writes it out, or that no worker could
    write (`why`). The path is quoted when it holds characters that would break the one-line message, and cut
    when long."""

    def __init__(self, path: str, why: str | None = None) -> None:
        shown = path if path.isprintable() else json.dumps(path)
        shown = shown if len(shown) <= _SHOWN else f"{shown[: _SHOWN - 3]}..."
        super().__init__(f"Unsafe payload path: {shown}" + (f" ({why})" if why else ""))
        self.path = path


def check_payload_paths(paths: Iterable[str]) -> None:
    """The reference's rule, a POSIX relative path, not empty, not absolute, no `..` part; and one a worker can
    write (`_unwritable`). Checked where a bundle comes in, so a deploy that could only fail on the workers, at its
    healthy deadline, is refused instead."""
    for path in sorted(paths):
        pure = PurePosixPath(path)  # no parts for "", "." or "./": no file
        if not pure.parts or pure.is_absolute() or ".." in pure.parts:
            raise UnsafePayloadPathError(path)
        why = _unwritable(path)
        if why is not None:
            raise UnsafePayloadPathError(path, why)


def _unwritable(path: str) -> str | None:
    """Why no file system could hold `path` as a file name; None when one can."""
    if "\0" in path:
        return "holds a NUL byte"
    try:
        encoded = path.encode("utf-8")
    except UnicodeEncodeError:
        return "not UTF-8 text"
    if len(encoded) > MAX_PATH_BYTES:
        return f"longer than {MAX_PATH_BYTES} bytes"
    if any(len(name.encode("utf-8")) > MAX_NAME_BYTES for name in PurePosixPath(path).parts):
        return f"has a name longer than {MAX_NAME_BYTES} bytes"
    return None


def bundle_fingerprint(payloads: Mapping[str, bytes]) -> str:
    """sha256 of the canonical JSON of {path: sha256(content)}: equal file sets share one bundle."""
    return digest({path: hashlib.sha256(data).hexdigest() for path, data in payloads.items()})
