"""Request fields -> the arguments the controller takes. Blank strings mean "not given", as in MirrorNeuron.

Where MirrorNeuron reads bad JSON as `{}` (reference §14) we refuse it: an override that silently vanished
would deploy something the caller did not ask for.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from mn_deploy_core.errors import DeploymentError
from mn_deploy_core.limits import parse_json
from mn_deploy_core.policy import display_value

# The SDK wraps every update policy in this envelope field; it is not a policy field.
_POLICY_ENVELOPE = "version"


class InvalidRequestError(DeploymentError):
    """A request field that is not what the API accepts (answered INVALID_ARGUMENT)."""


def optional(text: str) -> str | None:
    return text.strip() or None


_VERSION = re.compile(r"[1-9][0-9]{0,18}")
"""A version number as the store allocates them (a Redis counter: at most 19 digits), without sign or zeros."""
_SHOWN = 40
"""Characters of a refused value a message shows."""


def version(text: str) -> str | None:
    """The version a rollback names, None when blank. Anything else than a version number (`-1`, `abc`, `1.0`,
    20 digits) is refused as such, instead of answering that no version matched it."""
    wanted = optional(text)
    if wanted is not None and not _VERSION.fullmatch(wanted):
        raise InvalidRequestError(f'version must be a version number (1, 2, ...), not "{shown(wanted)}"')
    return wanted


def shown(value: str, most: int = _SHOWN) -> str:
    """`value` as a one-line message quotes it: non-printable characters escaped, cut after `most` characters."""
    text = display_value(value)
    return text if len(text) <= most else f"{text[: most - 3]}..."


def _parsed(text: str, field: str) -> Any:
    """`text` parsed as the core parses JSON; what it parses but refuses (nested too deep, `NaN`) is refused
    naming `field`. Bad syntax is left as json.JSONDecodeError, which each field words its own way."""
    try:
        return parse_json(text)
    except json.JSONDecodeError:
        raise
    except ValueError as error:
        raise InvalidRequestError(f"{field}: {error}") from error


def manifest(text: str) -> Any:
    """The decoded manifest; whether it is a valid one is the core's call."""
    try:
        return _parsed(text, "manifest_json")
    except json.JSONDecodeError as error:
        raise InvalidRequestError(f"manifest_json is not valid JSON: {error}") from error


def update_policy(text: str) -> dict[str, Any] | None:
    """The policy override without the SDK's envelope; None when nothing is overridden."""
    overrides = _json_object(text, "update_policy_json")
    overrides.pop(_POLICY_ENVELOPE, None)
    return overrides or None


LIST_PAGE = 100
"""Records a ListDeployments reply holds when the query names no `limit`."""
LIST_PAGE_MOST = 1000


@dataclass(frozen=True, slots=True)
class ListQuery:
    """`query_json` of ListDeployments: exact filters, and the page (records after the id `after`, `limit` of them)."""

    key: str | None
    status: str | None
    after: str | None
    limit: int


def list_query(text: str) -> ListQuery:
    query = _json_object(text, "query_json")
    limit = query.get("limit", LIST_PAGE)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= LIST_PAGE_MOST:
        raise InvalidRequestError(f"query_json.limit must be an integer from 1 to {LIST_PAGE_MOST}")
    return ListQuery(_filter(query, "deployment_key"), _filter(query, "status"), _filter(query, "after"), limit)


def _filter(query: dict[str, Any], name: str) -> str | None:
    value = query.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidRequestError(f"query_json.{name} must be a string")
    return optional(value or "")


def _json_object(text: str, field: str) -> dict[str, Any]:
    if not text.strip():
        return {}
    try:
        value = _parsed(text, field)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise InvalidRequestError(f"{field} must be a JSON object")
    return value


@dataclass(frozen=True, slots=True)
class ServiceQuery:
    """`query_json` of ListServices and ResolveService: exact filters (MirrorNeuron's: name, node, job_id,
    agent_id, status, tags), and whether only passing instances count (`passing_only`, default true)."""

    name: str | None
    node: str | None
    job_id: str | None
    agent_id: str | None
    status: str | None
    tags: tuple[str, ...]
    passing_only: bool


def service_query(text: str) -> ServiceQuery:
    query = _json_object(text, "query_json")
    tags = query.get("tags")
    tags = [] if tags is None else tags  # null is no filter; false, 0 or "" are no list
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise InvalidRequestError("query_json.tags must be a list of strings")
    passing_only = query.get("passing_only", True)
    if not isinstance(passing_only, bool):
        raise InvalidRequestError("query_json.passing_only must be true or false")
    filters = (_filter(query, name) for name in ("name", "node", "job_id", "agent_id", "status"))
    return ServiceQuery(*filters, tags=tuple(tags), passing_only=passing_only)
