"""The published JSON Schemas of scenario and sweep files (`schemas/`, written by `scripts/write_schemas.py`), built
from the validator's own tables: the closed objects' key lists, the plain fields' checkers (`KINDS`), the behavior
fields, the distribution families, the actions' verbs and options, the measures and operators of a requirement.
An editor pointed at them completes keys and flags typos as the loader would; the loader stays the authority for
what a schema cannot say (a deploy names a manifest the file has, a crash an agent it runs, a manifest's rules).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sim.actions import OPTIONS
from sim.behavior import AGENTS, DEFAULT, PROBABILITIES, TIMES
from sim.distributions import FAMILIES
from sim.manifest_files import FILE
from sim.measures import MEASURES
from sim.requirements import MAX_LENGTH, NAMES, OPERATORS
from sim.scenario import KEYS as SCENARIO_KEYS
from sim.scenario import PLAIN as SCENARIO_PLAIN
from sim.scenario import REQUIRED as SCENARIO_REQUIRED
from sim.schema import KINDS, SCHEMA_KEY, number, probability, text
from sim.sweep import KEYS as SWEEP_KEYS
from sim.sweep import MAX_POINTS, MAX_RUNS
from sim.sweep import PLAIN as SWEEP_PLAIN
from sim.sweep import REQUIRED as SWEEP_REQUIRED

DRAFT = "https://json-schema.org/draft/2020-12/schema"
_POSITIVE = {"type": "number", "exclusiveMinimum": 0}
_FAMILY_BODIES: Mapping[str, Mapping[str, Any]] = {
    "const": KINDS[number],
    "uniform": {"type": "array", "prefixItems": [KINDS[number], KINDS[number]], "minItems": 2, "maxItems": 2},
    "exponential": {"mean": _POSITIVE},
    "lognormal": {"median": _POSITIVE, "sigma": KINDS[number]},
    "normal": {"mean": KINDS[number], "std": KINDS[number]},
    "empirical": {"type": "array", "items": KINDS[number], "minItems": 1},
}
"""Each family's body: a schema, or the fields of a closed object that needs them all."""


def closed(properties: Mapping[str, Any], required: Sequence[str] = ()) -> dict[str, Any]:
    """An object with these properties only, as `sim.schema.closed_object` checks."""
    shape: dict[str, Any] = {"type": "object", "properties": dict(properties), "additionalProperties": False}
    if required:
        shape["required"] = list(required)
    return shape


def _family(body: Mapping[str, Any]) -> Mapping[str, Any]:
    return body if "type" in body else closed(body, list(body))


def distribution() -> dict[str, Any]:
    """A time in ms: a number, or a one-key object naming a family."""
    if set(_FAMILY_BODIES) != set(FAMILIES):
        raise AssertionError(f"the schema's families {sorted(_FAMILY_BODIES)} are not the loader's {FAMILIES}")
    families = [closed({f: _family(_FAMILY_BODIES[f])}, [f]) for f in FAMILIES]
    return {"anyOf": [KINDS[number], *families]}


def _fields() -> dict[str, Any]:
    times = {name: {"$ref": "#/$defs/distribution"} for name in TIMES}
    return {**times, **{name: KINDS[probability] for name in PROBABILITIES}}


def behavior_block() -> dict[str, Any]:
    agent = closed(_fields())
    return closed({**_fields(), AGENTS: {"type": "object", "additionalProperties": agent}})


def action() -> dict[str, Any]:
    """Exactly one verb with its options; a crash names its agent."""
    crash = closed({"agent": KINDS[text], "key": KINDS[text]}, ["agent"])
    branches = []
    for verb, options in OPTIONS.items():
        target = crash if verb == "crash" else KINDS[text]
        shapes = {name: {"type": "object"} if name == "overrides" else KINDS[text] for name in options}
        branches.append(closed({"at_ms": KINDS[number], verb: target, **shapes}, ["at_ms", verb]))
    return {"oneOf": branches}


def requirement() -> dict[str, Any]:
    """`MEASURE OP VALUE`, as `sim.requirements.parse_requirement` reads it (the value it checks further)."""
    names = "|".join(re.escape(n) for n in NAMES)
    ops = "|".join(re.escape(op) for op in sorted(OPERATORS, key=len, reverse=True))
    return {"type": "string", "maxLength": MAX_LENGTH, "pattern": rf"^\s*({names})\s*({ops})\s*\S+\s*$"}


def _plain(table: Mapping[str, Callable[[Any, str], Any]]) -> dict[str, Any]:
    return {key: KINDS[check] for key, check in table.items()}


def _keys_in_order(keys: Sequence[str], properties: Mapping[str, Any]) -> dict[str, Any]:
    """The properties in the loader's key order; a key without a shape is a loader-table change to describe here."""
    missing = [key for key in keys if key not in properties]
    if missing or set(properties) - set(keys):
        raise AssertionError(f"the schema and the loader disagree on keys: {missing or set(properties) - set(keys)}")
    return {key: properties[key] for key in keys}


def scenario_schema() -> dict[str, Any]:
    reference = closed({FILE: KINDS[text]}, [FILE])
    manifest = {"type": "object", "not": {"required": [FILE]}, "description": "a manifest; the core checks its rules"}
    properties = {
        SCHEMA_KEY: {"type": "string"},
        **_plain(SCENARIO_PLAIN),
        "manifests": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"not": {"const": DEFAULT}},
            "additionalProperties": {"anyOf": [reference, manifest]},
        },
        "behaviors": {"type": "object", "additionalProperties": {"$ref": "#/$defs/behavior"}},
        "actions": {"type": "array", "items": {"$ref": "#/$defs/action"}},
        "requirements": {"type": "array", "items": {"$ref": "#/$defs/requirement"}},
    }
    return {
        "$schema": DRAFT,
        "title": "mn-deploy scenario",
        "description": "A scenario file of the simulator (docs/scenarios.md).",
        **closed(_keys_in_order(SCENARIO_KEYS, properties), SCENARIO_REQUIRED),
        "$defs": {
            "distribution": distribution(),
            "behavior": behavior_block(),
            "action": action(),
            "requirement": requirement(),
        },
    }


def sweep_schema() -> dict[str, Any]:
    axis = {"type": "array", "minItems": 1}
    properties = {
        SCHEMA_KEY: {"type": "string"},
        "scenario": KINDS[text],
        **_plain(SWEEP_PLAIN),
        "runs": {"type": "integer", "minimum": 1, "maximum": MAX_RUNS},
        "grid": {
            "type": "object",
            "additionalProperties": axis,
            "description": f"dotted paths to values; at most {MAX_POINTS} points (the product of the axes' lengths)",
        },
        "metrics": {"type": "array", "items": {"enum": list(MEASURES)}},
    }
    return {
        "$schema": DRAFT,
        "title": "mn-deploy sweep",
        "description": "A Monte Carlo sweep file of the simulator (docs/scenarios.md, Sweep).",
        **closed(_keys_in_order(SWEEP_KEYS, properties), SWEEP_REQUIRED),
    }


SCHEMAS: Mapping[str, Callable[[], dict[str, Any]]] = {
    "scenario.schema.json": scenario_schema,
    "sweep.schema.json": sweep_schema,
}
"""Each published file and what builds it."""


def published() -> dict[str, str]:
    """Each published file's name and text, as `scripts/write_schemas.py` writes it."""
    return {name: json.dumps(build(), indent=2, ensure_ascii=False) + "\n" for name, build in SCHEMAS.items()}
