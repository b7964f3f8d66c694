"""A JSON file read for the simulator: an unreadable file or bad JSON is a ScenarioError, never a traceback.

Scenario files, and sweeps and `sim run --set` (which override parts of the document before it is loaded),
all read through here, so the messages are the same everywhere. The text is parsed by the core's `parse_json`,
as manifests are on every other route: nesting deeper than `MAX_DEPTH` and numbers that are not finite (`NaN`,
`Infinity`, which Python's parser would take) are refused with one line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mn_deploy_core.limits import parse_json
from sim.schema import ScenarioError


def read_json(path: str | Path) -> Any:
    try:
        content = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ScenarioError("", f"cannot read the file: {getattr(error, 'strerror', None) or error}") from None
    try:
        return parse_json(content)
    except json.JSONDecodeError as error:
        raise ScenarioError("", f"not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})") from None
    except ValueError as error:
        raise ScenarioError("", str(error)) from None
