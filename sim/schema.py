"""Shape checks for scenario JSON: every problem names the JSONPath (`$.actions[2].deploy`) where it is.

A typo in a scenario must fail loudly rather than silently change a what-if answer, so objects are
closed (unknown keys are errors) and numbers are checked before anything runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from typing import Any

from mn_deploy_core.limits import finite_number

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


class ScenarioError(ValueError):
    """A scenario that cannot run; `str()` is one line: `<JSONPath>: <problem>`, or just the problem when
    the file itself is at fault (unreadable, not JSON)."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}" if path else problem)
        self.path = path
        self.problem = problem


def child(path: str, key: str | int) -> str:
    """The path of `key` inside `path`: `$.a.b`, `$.a[3]`, and `$.a["odd key"]` for keys that are not
    plain names, so the path stays on one line whatever the key holds."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if _PLAIN_KEY.fullmatch(key) else f"{path}[{json.dumps(key)}]"


def closed_object(value: Any, path: str, allowed: Collection[str], required: Collection[str] = ()) -> Mapping[str, Any]:
    """`value` as an object whose keys are all `allowed` and which has every `required` key."""
    if not isinstance(value, Mapping):
        raise ScenarioError(path, "must be an object")
    for key in value:
        if key not in allowed:
            raise ScenarioError(child(path, str(key)), "unknown key")
    for key in required:
        if key not in value:
            raise ScenarioError(child(path, key), "is required")
    return value


def object_of(value: Any, path: str) -> Mapping[str, Any]:
    """`value` as an object with arbitrary (string) keys."""
    if not isinstance(value, Mapping):
        raise ScenarioError(path, "must be an object")
    return value


def list_of(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise ScenarioError(path, "must be a list")
    return value


def text(value: Any, path: str) -> str:
    """A non-blank string."""
    if not isinstance(value, str) or not value.strip():
        raise ScenarioError(path, "must be a non-blank string")
    return value


def number(value: Any, path: str, *, minimum: float = 0.0, positive: bool = False) -> float:
    """A finite number (not a bool) at least `minimum`, or above it when `positive`; finite as a float, since
    the simulator computes in floats."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not finite_number(value):
        raise ScenarioError(path, "must be a finite number")
    if positive and value <= minimum:
        raise ScenarioError(path, f"must be greater than {minimum:g}")
    if value < minimum:
        raise ScenarioError(path, f"must be at least {minimum:g}")
    return float(value)


def probability(value: Any, path: str) -> float:
    p = number(value, path)
    if p > 1:
        raise ScenarioError(path, "must be a probability between 0 and 1")
    return p


def natural(value: Any, path: str) -> int:
    """A non-negative integer (seeds, counts)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ScenarioError(path, "must be a non-negative integer")
    return value
