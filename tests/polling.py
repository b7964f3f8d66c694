"""Waiting on the state a test asserts: poll it with a deadline, never sleep a fixed time as synchronisation."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(condition: Callable[[], Any], timeout_s: float = 20.0, what: str | Callable[[], str] = "condition") -> Any:
    """The first truthy value of `condition()`; fail naming `what` if none comes within `timeout_s` (a callable
    `what` is asked then, so that the failure can say what the state was)."""
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout_s:g} s waiting for {what if isinstance(what, str) else what()}"
            )
        time.sleep(0.02)
    return value
