"""scipy's statistics, loaded on first use: importing them costs some 75 MB and half a second, and only calibration
and predictions need them, never a simulation or a sweep (`tests/sim/test_imports.py`)."""

from __future__ import annotations

from types import ModuleType


def stats() -> ModuleType:
    """`scipy.stats`, imported now if it was not yet."""
    from scipy import stats as loaded

    return loaded
