"""The one command that reproduces a run, printed wherever a run fails so it can be reproduced alone."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from sim.overrides import format_assignment


def reproduce_command(
    file: str, seed: int, overrides: Mapping[str, Any] | None = None, until_ms: float | None = None
) -> str:
    """`mn-deploy sim run FILE [--set PATH=VALUE ...] --seed N [--until-ms T]`, quoted for a POSIX shell."""
    words = ["mn-deploy", "sim", "run", file]
    for path, value in (overrides or {}).items():
        words += ["--set", format_assignment(path, value)]
    words += ["--seed", str(seed)]
    if until_ms is not None:
        words += ["--until-ms", f"{until_ms:g}"]
    return shlex.join(words)
