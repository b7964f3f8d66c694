"""The core's clock in the live world."""

from __future__ import annotations

import time


def wall_ms() -> float:
    """Epoch milliseconds, so records carry real ISO timestamps."""
    return time.time() * 1000.0
