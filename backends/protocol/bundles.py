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
from mn_deploy_core.limits import has_control
from mn_deploy_core.manifest import digest
from mn_deploy_core.policy import display_value

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
    """The reference's rule, a POSIX relative path, not empty, not absolute, no `..` part; and a file a worker can
    write (`_unwritable`, `_unfit`) as one of the set: not spelt as another one (`./a` and `a//b` are written as
    `a` and `a/b`) nor a file another one needs as a directory. Checked where a bundle comes in, so a deploy that
    could only fail on the workers, at its healthy deadline, is refused instead."""
    files: dict[PurePosixPath, str] = {}
    for path in sorted(paths):
        pure = PurePosixPath(path)  # no parts for "", "." or "./": no file
        if not pure.parts or pure.is_absolute() or ".." in pure.parts:
            raise UnsafePayloadPathError(path)
        why = _unwritable(path) or _unfit(path)
        if why is None and pure in files:
            why = f"the same file as {display_value(files[pure])[:_SHOWN]}"
        if why is not None:
            raise UnsafePayloadPathError(path, why)
        files[pure] = path
    directories = {parent for pure in files for parent in pure.parents}
    clash = min((pure for pure in files if pure in directories), default=None)
    if clash is not None:
        raise UnsafePayloadPathError(files[clash], "a file, and a directory of other paths")


def _unfit(path: str) -> str | None:
    """Why `path` names no file a worker should write; None when it does. A control character (a line break) would
    forge lines in the logs and messages that name the file; `a/` is a directory."""
    if has_control(path):
        return "holds a control character"
    if path.endswith("/"):
        return "a directory, not a file"
    return None


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
