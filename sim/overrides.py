"""Changing a scenario document by dotted path (`manifests.v2.policies.update.max_parallel`), for sweep grids
and `sim run --set`.

Every part of a path must already exist in the scenario: a policy accepts unknown keys, so creating one would
let a typo silently leave the what-if answer unchanged. A part made of digits indexes a list
(`manifests.v1.nodes.0.count`); keys that contain a dot cannot be addressed.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from mn_deploy_core.limits import parse_json
from sim.schema import child


class PathError(LookupError):
    """A dotted path that names nothing in the scenario (`problem` says where the walk stopped), or a `PATH=VALUE`
    assignment that cannot be read."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def _step(node: Any, part: str, where: str, path: str) -> tuple[Any, str | int]:
    """The key or index that `part` names in `node`, which sits at JSONPath `where`."""
    if isinstance(node, dict) and part in node:
        return node, part
    if isinstance(node, list) and part.isdigit() and int(part) < len(node):
        return node, int(part)
    raise PathError(path, f'not in the scenario (no "{part}" at {where})')


def with_overrides(document: Any, overrides: Mapping[str, Any]) -> Any:
    """A copy of `document` with each dotted path set to its value; the original is left as it was."""
    changed = copy.deepcopy(document)
    for path, value in overrides.items():
        node, where = changed, "$"
        *parents, last = path.split(".")
        for part in parents:
            container, key = _step(node, part, where, path)
            node, where = container[key], child(where, key)
        container, key = _step(node, last, where, path)
        container[key] = copy.deepcopy(value)
    return changed


def parse_assignment(text: str) -> tuple[str, Any]:
    """`PATH=VALUE` from the command line; VALUE is JSON when it parses as JSON, else the text itself, so
    `strategy=canary` and `start_failure=0.2` both read as meant. JSON that a scenario file may not hold
    (nested too deep, `NaN`) is refused as it would be in the file."""
    path, equals, raw = text.partition("=")
    if not equals or not path:
        raise PathError(text, "expected PATH=VALUE")
    try:
        return path, parse_json(raw)
    except json.JSONDecodeError:
        return path, raw
    except ValueError as error:
        raise PathError(path, f"VALUE {error}") from None


def format_assignment(path: str, value: Any) -> str:
    """The `PATH=VALUE` that `parse_assignment` reads back as `value`."""
    return f"{path}={json.dumps(value, ensure_ascii=False)}"
