"""Bounds on what the core takes in, so a few bytes of JSON cannot exhaust a controller or a simulation.

`parse_json` is how every route reads manifest and scenario text; `json_problem` checks a document however it
arrived (already parsed by gRPC, built in Python).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Mapping
from typing import Any

from mn_deploy_core.errors import InvalidArgumentError

MAX_AGENTS = 100_000
"""Agents one manifest may expand to, so also the largest `count` of a node. A count is a few bytes of JSON,
but each agent costs the controller memory, store space and work in every deployment; 100,000 is the largest
fleet the benchmarks run."""
MAX_DEPTH = 64
"""Arrays and objects nested inside one another in a document, at most (real ones nest fewer than ten). Python's
JSON parser and encoder and `copy.deepcopy` recurse, and fail some hundreds of levels down, so deeper input is
refused before anything walks it."""
MAX_TEXT = 1000
"""Characters of an operator's free text (a pause, resume, fail or rollback reason; a tag) at most. A reason
becomes a record's description and lands in its events, which every reply carries: unbounded, two pauses with a
megabyte each made a record no reply could hold."""
MAX_NAME = 100
"""Characters of a deployment key or a node id at most. Both become parts of Redis keys, of deployment and
instance ids, and on a worker of an instance's directory name, which a file system holds to 255 bytes."""
_TOO_DEEP = f"nested more than {MAX_DEPTH} levels deep"
_NOT_FINITE = "holds a number that is not finite (NaN, Infinity, or over 1.8e308 in size)"
_NOT_TEXT = "holds text that is not Unicode (a lone surrogate, \\ud800 to \\udfff)"
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
"""Control characters (C0, DEL, C1): no name may hold one."""
_SURELY_FINITE = 2**1023
"""An integer strictly between minus this and this converts to a finite float; only larger ones need trying."""


def finite_number(value: float) -> bool:
    """Whether a number is finite as a float: not NaN nor an infinity, nor an integer too large for a float (the
    controller and the simulator compute times in floats, which would overflow on it)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def json_problem(value: Any) -> str | None:
    """Why `value`, though Python holds it, is not a document to take: nested deeper than MAX_DEPTH, holding a
    number that is not finite as a float (JSON has no NaN or Infinity, and results written back would not be
    JSON), or holding a string, as a key or a value, with a lone surrogate (JSON's `"\\ud800"` is valid syntax
    but no text: it cannot be encoded as UTF-8, so whatever writes it later fails). None when it is fine.

    It walks one level at a time instead of recursing, so it can measure any depth. It is run on every manifest,
    so each level is sorted in one pass, on exact types first (what `json.loads` makes); an ASCII string (the
    test is O(1)) cannot hold a surrogate, and the others are searched together.
    """
    level: Collection[Any] = [value]
    enclosing = 0
    while level:
        wide: list[str] = []
        containers: list[Collection[Any]] = []
        for v in level:
            kind = type(v)
            if kind is str:
                if not v.isascii():
                    wide.append(v)
            elif kind is float:
                if not math.isfinite(v):
                    return _NOT_FINITE
            elif kind is int:
                if not -_SURELY_FINITE < v < _SURELY_FINITE and not finite_number(v):
                    return _NOT_FINITE
            elif kind is dict or isinstance(v, Mapping):
                containers += (v.keys(), v.values())
            elif kind is list or isinstance(v, list | tuple):
                containers.append(v)
            elif isinstance(v, str):
                if not v.isascii():
                    wide.append(v)
            elif isinstance(v, int | float) and not finite_number(v):
                return _NOT_FINITE
        if wide and _SURROGATE.search("".join(wide)):
            return _NOT_TEXT
        if containers and enclosing == MAX_DEPTH:
            return _TOO_DEEP
        level = [v for inner in containers for v in inner]
        enclosing += 1
    return None


def parse_json(text: str) -> Any:
    """`text` read as JSON the one way every route reads manifests and scenarios.

    Raises json.JSONDecodeError for bad syntax, and ValueError with a one-line message for what Python's parser
    accepts but a document must not hold (`json_problem`: its `NaN`, `Infinity` and `1e400` are not finite, its
    `"\\udc80"` is no text) or cannot read (an integer of thousands of digits). The parser recurses, so input
    deep enough makes it raise RecursionError: that too means too deep.
    """
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError(_TOO_DEEP) from None
    except json.JSONDecodeError:  # a ValueError too, but bad syntax: the caller says where it is
        raise
    except ValueError:  # int() refuses more digits than sys.get_int_max_str_digits()
        raise ValueError("holds an integer with too many digits") from None
    problem = json_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def check_text(name: str, value: str | None) -> None:
    """InvalidArgumentError when an operator's `name` (a reason, a tag) is longer than MAX_TEXT characters, or
    holds a control character: it is shown on one line (a status, an event, a log line) that a line break or an
    escape sequence would forge or garble."""
    if value is not None and len(value) > MAX_TEXT:
        raise InvalidArgumentError(f"{name} is longer than {MAX_TEXT} characters ({len(value)})")
    if has_control(value):
        raise InvalidArgumentError(f"{name} must not hold control characters")


def blank(value: Any) -> bool:
    """Whether `value` is not a string with something in it: a name must be one."""
    return not isinstance(value, str) or not value.strip()


def has_control(value: Any) -> bool:
    """Whether `value` is a string holding a control character."""
    return isinstance(value, str) and _CONTROL.search(value) is not None
