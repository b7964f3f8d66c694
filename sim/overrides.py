"""Changing a scenario document by dotted path (`manifests.v2.policies.update.max_parallel`), for sweep grids
and `sim run --set`.

A path may name a value the file lacks only where the scenario format defines one (`_addable`): a policy field the
manifest format knows (`manifests.v1.policies.update.strategy` on a file without a `strategy`), a deploy's
`overrides` field, a behavior field, a scenario's optional key. Anywhere else every part must already exist: a
policy accepts unknown keys, so creating `max_paralel` would let a typo silently leave the what-if answer unchanged.
A part made of digits indexes a list (`manifests.v1.nodes.0.count`); keys that contain a dot cannot be addressed.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from mn_deploy_core.limits import parse_json
from mn_deploy_core.policy import display_value, unknown_keys
from sim.behavior import AGENTS, DEFAULT, FIELDS
from sim.scenario import KEYS
from sim.schema import child


class PathError(LookupError):
    """A dotted path that names nothing in the scenario (`problem` says where the walk stopped), or a `PATH=VALUE`
    assignment that cannot be read."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{display_value(path)}: {problem}")
        self.path = path
        self.problem = problem


def _policies(below: list[str]) -> dict[str, Any]:
    """`update.strategy` as the policies object `{"update": {"strategy": None}}`, to ask the core if it knows it."""
    section, *key = below
    return {section: {key[0]: None} if key else {}}


def _deploys(document: Any, index: str) -> bool:
    actions = document.get("actions")
    return isinstance(actions, list) and isinstance(actions[int(index)], dict) and "deploy" in actions[int(index)]


def _addable(document: Any, parts: tuple[str, ...]) -> bool:
    """Whether the scenario format defines the value at `parts`, which the document lacks (its parents it has).
    Policy keys are the manifest format's (`unknown_keys`, the list `sim run` warns with)."""
    match parts:
        case (key,):
            return key in KEYS
        case ("behaviors", block):
            return block == DEFAULT or block in document.get("manifests", {})
        case ("behaviors", _, name):
            return name in (*FIELDS, AGENTS)
        case ("behaviors", _, "agents", _):
            return True
        case ("behaviors", _, "agents", _, name):
            return name in FIELDS
        case ("manifests", _, "policies"):
            return True
        case ("manifests", _, "policies", *below) if len(below) <= 2:
            return not unknown_keys(_policies(below))
        case ("actions", index, "overrides"):
            return _deploys(document, index)
        case ("actions", _, "overrides", key):
            return not unknown_keys({"update": {key: None}})
    return False


def _step(document: Any, node: Any, parts: tuple[str, ...], where: str, path: str, last: bool) -> tuple[Any, str | int]:
    """The key or index that the last of `parts` names in `node`, which sits at JSONPath `where`; a value the
    format defines there but the document lacks is added (an empty object when the path goes on below it)."""
    part = parts[-1]
    if isinstance(node, dict) and part in node:
        return node, part
    if isinstance(node, list) and part.isdigit() and int(part) < len(node):
        return node, int(part)
    if isinstance(node, dict) and _addable(document, parts):
        if not last:
            node[part] = {}
        return node, part
    raise PathError(path, f"not in the scenario (no {display_value(json.dumps(part, ensure_ascii=False))} at {where})")


def with_overrides(document: Any, overrides: Mapping[str, Any]) -> Any:
    """A copy of `document` with each dotted path set to its value; the original is left as it was."""
    changed = copy.deepcopy(document)
    for path, value in overrides.items():
        node, where = changed, "$"
        parts = tuple(path.split("."))
        for depth in range(1, len(parts) + 1):
            last = depth == len(parts)
            container, key = _step(changed, node, parts[:depth], where, path, last)
            if last:
                container[key] = copy.deepcopy(value)
            else:
                node, where = container[key], child(where, key)
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
