"""Files that hold a secret (a gRPC token, the order key, a Redis URL with its password): written so that no other
user can read them even for a moment, and refused when read if others may, as ssh refuses a private key."""

from __future__ import annotations

import os
from pathlib import Path


def write_secret(path: Path, text: str) -> None:
    """`text` in a file made 0600 before anything is written to it (a stale file, from an earlier run, goes first)."""
    path.unlink(missing_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
        file.write(text)


def too_open(mode: int) -> str | None:
    """What is wrong with a secret file of this `st_mode`, to follow its name in a one-line error; None if nothing."""
    if mode & 0o077:
        return f"may be read by others (mode {mode & 0o777:o}): chmod 600 it"
    return None
