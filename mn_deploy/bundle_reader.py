"""Reading a bundle from disk: `manifest.json` plus every file under the `payloads/` beside it.

Everything a deploy sends is checked here, before any call, so a bad bundle changes nothing on the controller:
payload paths as the controller checks them (a file name that is not UTF-8 could not even be sent).
The manifest text is sent as it is; it is only parsed, as the controller will parse it, to report bad JSON with
its line and column, and JSON the controller refuses (nested too deep, `NaN`) in one line.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from backends.protocol.bundles import UnsafePayloadPathError, check_payload_paths
from backends.protocol.sizes import TooLargeError, check_bundle_size, check_manifest_size
from mn_deploy_core.limits import parse_json


class BundleError(Exception):
    """A bundle that cannot be sent; the message is the one line the user sees."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Bundle:
    manifest_json: str
    payloads: dict[str, bytes]


def read_bundle(path: Path) -> Bundle:
    """A directory means `<dir>/manifest.json` and `<dir>/payloads/**`; a file means that manifest and the
    `payloads/` beside it (reference §15)."""
    if not path.exists():
        raise BundleError(f"Bundle not found: {path}")
    manifest = path / "manifest.json" if path.is_dir() else path
    try:
        text = manifest.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BundleError(f"Bundle {path} has no manifest.json") from None
    except (OSError, UnicodeDecodeError) as error:
        raise BundleError(f"Cannot read {manifest}: {error}") from error
    try:
        check_manifest_size(text)  # before parsing what would not be sent anyway
        parse_json(text)
    except TooLargeError as error:
        raise BundleError(f"{manifest}: {error.message}") from None
    except json.JSONDecodeError as error:
        raise BundleError(f"{manifest} is not valid JSON: {error}") from error
    except ValueError as error:
        raise BundleError(f"{manifest}: {error}") from error
    return Bundle(text, _payloads(manifest.parent / "payloads"))


def _payloads(root: Path) -> dict[str, bytes]:
    """Every regular file under `root` by its POSIX path relative to it. A link is refused wherever it points
    (`payloads/` itself included): followed, it could send a file the bundle does not hold (`/etc/passwd`), loop,
    or point elsewhere by the time it is read; a bundle's files are copied in. So is what is neither a file nor a
    directory (a FIFO or a device, whose reading may never end), and a directory that cannot be listed (its files
    would be left out without a word)."""
    if root.is_symlink():
        raise _unsafe(root, root.parent)
    if not root.is_dir():
        return {}
    payloads: dict[str, bytes] = {}
    total = 0
    for directory, subdirectories, files in os.walk(root, onerror=_unlistable):
        for name in sorted([*subdirectories, *files]):
            entry = Path(directory, name)
            if entry.is_symlink():
                raise _unsafe(entry, root)
            if not (entry.is_dir() or entry.is_file()):
                relative = entry.relative_to(root).as_posix()
                raise BundleError(UnsafePayloadPathError(relative, "neither a file nor a directory").message)
        files_here = [Path(directory, name) for name in files]
        total += sum(entry.stat().st_size for entry in files_here)
        try:
            check_bundle_size(total)  # before reading what would not be sent anyway
        except TooLargeError as error:
            raise BundleError(f"{root.parent}: {error.message}") from None
        for entry in files_here:
            payloads[entry.relative_to(root).as_posix()] = _read(entry)
    try:
        check_payload_paths(payloads)
    except UnsafePayloadPathError as error:
        raise BundleError(error.message) from None
    return payloads


def _unsafe(link: Path, root: Path) -> BundleError:
    """A link refused, shown as `path -> target`."""
    return BundleError(UnsafePayloadPathError(f"{link.relative_to(root).as_posix()} -> {os.readlink(link)}").message)


def _unlistable(error: OSError) -> None:
    raise BundleError(f"Cannot read payload directory {error.filename}: {error.strerror or error}")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise BundleError(f"Cannot read payload {path}: {error.strerror or error}") from error
