"""Shape checks for scenario JSON: every problem names the JSONPath (`$.actions[2].deploy`) where it is.

A typo in a scenario must fail loudly rather than silently change a what-if answer, so objects are
closed (unknown keys are errors) and numbers are checked before anything runs. A file with several problems
reports them all at once, so one edit fixes them rather than one run per typo: every parser raises one
ScenarioError holding all of its problems, and a parser of a composite gathers its parts' with `Problems`.
The published JSON Schemas (`sim/json_schemas.py`) describe the same checks: each checker's `KINDS` entry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from mn_deploy_core.limits import finite_number

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")
SHOWN = 50
"""Problems a command prints at most; the rest are counted, as a file broken everywhere is one mistake repeated."""
SCHEMA_KEY = "$schema"
"""The key an editor reads to find a file's JSON Schema; scenario and sweep files may carry it, and it means nothing."""
P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong: where (a JSONPath, empty when the file itself is at fault) and what."""

    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}" if self.path else self.problem


class ScenarioError(ValueError):
    """A scenario that cannot run, with every problem found (`problems`, in document order). `str()` is one line:
    the first problem, `<JSONPath>: <problem>` (just the problem when the file itself is at fault), followed by
    `(and N more problems)` when there are others; `lines()` gives each on its own line."""

    def __init__(self, path: str, problem: str, *more: Problem) -> None:
        self.problems = (Problem(path, problem), *more)
        self.path = path
        self.problem = problem
        others = f" (and {len(more)} more problem{'s' if len(more) > 1 else ''})" if more else ""
        super().__init__(f"{self.problems[0]}{others}")

    @classmethod
    def of(cls, problems: Sequence[Problem]) -> ScenarioError:
        first, *more = problems
        return cls(first.path, first.problem, *more)

    def lines(self, limit: int = SHOWN) -> list[str]:
        """Each problem on its own line, at most `limit`, then how many more there are."""
        shown = [str(p) for p in self.problems[:limit]]
        if len(self.problems) > limit:
            shown.append(f"and {len(self.problems) - limit} more problems")
        return shown

    def inside(self, path: str, prefix: str) -> ScenarioError:
        """These problems as problems at `path` of an enclosing document (a sweep's scenario), each after `prefix`."""
        return ScenarioError.of([Problem(path, f"{prefix}: {p}") for p in self.problems])


class Problems:
    """The problems a parser of a composite has found so far in its parts, to raise together at the end."""

    def __init__(self) -> None:
        self.found: list[Problem] = []

    def add(self, path: str, problem: str) -> None:
        self.found.append(Problem(path, problem))

    def check(self, parse: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T | None:
        """`parse(...)`, or None with its problems noted."""
        try:
            return parse(*args, **kwargs)
        except ScenarioError as error:
            self.found.extend(error.problems)
            return None

    def field(self, body: Mapping[str, Any], path: str, key: str, parse: Callable[[Any, str], T], default: T) -> T:
        """`body[key]` parsed at its path; `default` when it is absent, or bad (then noted, and the result unused)."""
        if key not in body:
            return default
        parsed = self.check(parse, body[key], child(path, key))
        return default if parsed is None else parsed

    def raise_any(self) -> None:
        if self.found:
            raise ScenarioError.of(self.found)


def child(path: str, key: str | int) -> str:
    """The path of `key` inside `path`: `$.a.b`, `$.a[3]`, and `$.a["odd key"]` for keys that are not
    plain names, so the path stays on one line whatever the key holds."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if _PLAIN_KEY.fullmatch(key) else f"{path}[{json.dumps(key)}]"


def known_keys(body: Mapping[str, Any], path: str, allowed: Collection[str], required: Collection[str] = ()) -> None:
    """Every key of `body` is `allowed`, and every `required` one is there; all that is not, raised together."""
    problems = [Problem(child(path, str(key)), "unknown key") for key in body if key not in allowed]
    problems += [Problem(child(path, key), "is required") for key in required if key not in body]
    if problems:
        raise ScenarioError.of(problems)


def closed_object(value: Any, path: str, allowed: Collection[str], required: Collection[str] = ()) -> Mapping[str, Any]:
    """`value` as an object whose keys are all `allowed` and which has every `required` key."""
    body = object_of(value, path)
    known_keys(body, path, allowed, required)
    return body


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


def number_or_null(value: Any, path: str) -> float | None:
    """A `number`, or null for none (`until_ms`: no horizon, run to the end)."""
    return None if value is None else number(value, path)


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


KINDS: Mapping[Callable[..., Any], Mapping[str, Any]] = {
    text: {"type": "string", "pattern": "\\S"},
    number: {"type": "number", "minimum": 0},
    number_or_null: {"type": ["number", "null"], "minimum": 0},
    probability: {"type": "number", "minimum": 0, "maximum": 1},
    natural: {"type": "integer", "minimum": 0},
}
"""What each checker accepts, as JSON Schema, for the published schemas."""
