"""What a service's declared health checks may say (R1): every field a worker reads, checked wherever it is given.

The live worker reads each field from a check of any type when it starts an instance
(backends/live/worker/checks.py), so a check that could only fail there is refused with the manifest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mn_deploy_core.limits import blank, has_control
from mn_deploy_core.policy import display_value

CHECK_TYPES = ("http", "tcp", "exec")
MAX_CHECK_MS = 86_400_000
"""The longest `interval_ms` or `timeout_ms` a check may ask for: a day."""
_URL_PATH = re.compile("/[!-~]*")
"""An http check's path: printable ASCII without spaces, all `http.client` sends (it raises on anything else)."""


def _whole(value: Any, low: int, high: int) -> bool:
    """Whether `value` is an integer (not a bool) from `low` to `high`."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _argv(value: Any) -> bool:
    """Whether `value` is a command a process can be started with: a non-empty list of strings without NUL."""
    return isinstance(value, list) and bool(value) and all(isinstance(a, str) and "\0" not in a for a in value)


def _check_field_problems(where: str, check: Mapping[str, Any]) -> list[str]:
    """The fields of one check; an exec check needs its command."""
    problems: list[str] = []
    if check.get("type") not in CHECK_TYPES:
        problems.append(f'{where}.type has unsupported value "{display_value(check.get("type"))}"')
    if has_control(check.get("name")):
        problems.append(f"{where}.name must not hold control characters")
    for name in ("interval_ms", "timeout_ms"):
        if name in check and not _whole(check[name], 1, MAX_CHECK_MS):
            problems.append(f"{where}.{name} must be a positive integer, at most {MAX_CHECK_MS} (a day)")
    if "port" in check and not _whole(check["port"], 1, 65535):
        problems.append(f"{where}.port must be an integer from 1 to 65535")
    path = check.get("path")
    if "path" in check and not (isinstance(path, str) and _URL_PATH.fullmatch(path)):
        problems.append(f'{where}.path must be a string starting with "/", of printable ASCII without spaces')
    if ("command" in check or check.get("type") == "exec") and not _argv(check.get("command")):
        problems.append(f"{where}.command must be a non-empty list of strings without NUL characters")
    return problems


def service_problems(label: str, services: Any) -> list[str]:
    """What is wrong with a node's `services` and their checks, one line each, naming the node (`label`)."""
    if not isinstance(services, list):
        return [f"{label}: services must be a list"]
    problems: list[str] = []
    for s, service in enumerate(services):
        where = f"{label}: services[{s}]"
        if not isinstance(service, Mapping):
            problems.append(f"{where} must be an object")
            continue
        if blank(service.get("name")):
            problems.append(f"{where}.name must be a non-blank string")
        elif has_control(service["name"]):
            problems.append(f"{where}.name must not hold control characters")
        checks = service.get("checks", [])
        if not isinstance(checks, list):
            problems.append(f"{where}.checks must be a list")
            continue
        for c, check in enumerate(checks):
            if not isinstance(check, Mapping):
                problems.append(f"{where}.checks[{c}] must be an object")
            else:
                problems.extend(_check_field_problems(f"{where}.checks[{c}]", check))
    return problems
