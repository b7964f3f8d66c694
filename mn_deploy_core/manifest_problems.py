"""What a manifest must hold: every problem of a document, one line each naming the node or edge, collected
before anything is built (manifest.py builds what passes). Also the two facts both sides need: where a deployment
key may come from, and a node's runtime ids."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mn_deploy_core import policy as update_policy
from mn_deploy_core.checks import service_problems
from mn_deploy_core.limits import MAX_AGENTS, MAX_NAME, blank, has_control, json_problem
from mn_deploy_core.policy import display_value

_OBJECT_FIELDS = ("config", "resources", "constraints")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
WORKER_VARIABLES = frozenset(
    {
        "HOME",
        "TMPDIR",
        "PORT",
        "MN_AGENT_ID",
        "MN_INSTANCE_ID",
        "MN_DEPLOYMENT_KEY",
        "MN_DEPLOYMENT_VERSION",
        "MN_DEPLOYMENT_ROLE",
        "MN_BUNDLE_DIR",
    }
)
"""What a live worker sets in every agent's environment itself; a node's `config.env` may not set them."""


def key_sources(document: Mapping[str, Any], override: Any) -> tuple[tuple[str, Any], ...]:
    """Where a deployment key may come from, in order (reference §2), each with the name problems give it."""

    def inner(section: str, name: str) -> Any:
        value = document.get(section)
        return value.get(name) if isinstance(value, Mapping) else None

    return (
        ("the call's key", override),
        ("metadata.deployment_key", inner("metadata", "deployment_key")),
        ("deployment.key", inner("deployment", "key")),
        ("policies.deployment_key", inner("policies", "deployment_key")),
        ("job_name", document.get("job_name")),
        ("graph_id", document.get("graph_id")),
    )


def not_json_problems(document: Mapping[str, Any], overrides: Any, key: Any) -> list[str]:
    """`json_problem` of the document, the overrides and the call's key (it is written into the document). Like
    a document that is no object, these are refused alone: the other checks quote values in messages and digest
    them, both recursively."""
    named = (
        ("manifest", document),
        ("update policy overrides", overrides),
        ("the call's key", key if isinstance(key, str) else None),  # any other is never the key
    )
    return [f"{name}: {problem}" for name, value in named if (problem := json_problem(value)) is not None]


def document_problems(
    document: Mapping[str, Any], overrides: Mapping[str, Any] | None, key: Any
) -> tuple[list[str], bool]:
    """Every problem of the sections, the update policy's fields (the document's and the overrides'), the nodes,
    the edges and the entrypoints, in that order; and whether the policy's fields were valid, which its
    cross-field rules need."""
    problems = _section_problems(document, key)
    policy_problems = _policy_problems(document, overrides)
    problems.extend(policy_problems)
    nodes = document.get("nodes")
    problems.extend(_node_problems(nodes))
    node_ids = _node_ids(nodes)
    problems.extend(_edge_problems(document.get("edges", []), node_ids))
    problems.extend(_entrypoint_problems(document.get("entrypoints", []), node_ids))
    return problems, not policy_problems


def _node_label(node: Any, index: int) -> str:
    if isinstance(node, Mapping) and not blank(node.get("node_id")) and len(node["node_id"]) <= MAX_NAME:
        return f'node "{display_value(node["node_id"])}"'
    return f"nodes[{index}]"


def _count_problem(label: str, count: Any, before: int) -> str | None:
    """What is wrong with a node's `count` when the nodes before it expand to `before` agents; checked before
    any runtime id is made, so a huge count is refused without being expanded."""
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        return f"{label}: count must be a positive integer"
    if count > MAX_AGENTS:
        return f"{label}: count must be at most {MAX_AGENTS}"
    if before + count > MAX_AGENTS:
        return f"{label}: count {count} takes the manifest over {MAX_AGENTS} agents"
    return None


def _node_problems(nodes: Any) -> list[str]:
    if not isinstance(nodes, list) or not nodes:
        return ["nodes must be a non-empty list"]
    problems: list[str] = []
    seen: set[str] = set()
    taken: set[str] = set()
    for i, node in enumerate(nodes):
        label = _node_label(node, i)
        if not isinstance(node, Mapping):
            problems.append(f"{label} must be an object")
            continue
        node_id = node.get("node_id")
        fresh = False
        if not isinstance(node_id, str) or not node_id.strip():
            problems.append(f"{label}.node_id must be a non-blank string")
        elif has_control(node_id):
            problems.append(f"{label}: node_id must not hold control characters")
        elif len(node_id) > MAX_NAME:
            problems.append(f"{label}: node_id is longer than {MAX_NAME} characters ({len(node_id)})")
        elif node_id in seen:
            problems.append(f"{label}: duplicate node_id")
        else:
            seen.add(node_id)
            fresh = True
        if blank(node.get("agent_type")):
            problems.append(f"{label}: agent_type must be a non-blank string")
        count = node.get("count", 1)
        count_problem = _count_problem(label, count, len(taken))
        if count_problem is not None:
            problems.append(count_problem)
        elif fresh:
            ids = runtime_ids(str(node_id), count)
            clash = next((a for a in ids if a in taken), None)
            if clash is not None:
                problems.append(f'{label}: runtime id "{display_value(clash)}" is already used')
            taken.update(ids)
        for name in _OBJECT_FIELDS:
            if name in node and not isinstance(node[name], Mapping):
                problems.append(f"{label}: {name} must be an object")
        config = node.get("config")
        if isinstance(config, Mapping) and "env" in config:
            problems.extend(env_problems(label, config["env"]))
        if "services" in node:
            problems.extend(service_problems(label, node["services"]))
    return problems


def env_problems(label: str, env: Any) -> list[str]:
    """What is wrong with a node's `config.env`, the only variables an agent gets besides the worker's own
    (`WORKER_VARIABLES`), so a name or value a process cannot be given is refused here, not on a worker."""
    if not isinstance(env, Mapping):
        return [f"{label}: config.env must be an object of strings"]
    problems: list[str] = []
    for name, value in env.items():
        shown = display_value(name)
        if not (isinstance(name, str) and _ENV_NAME.fullmatch(name)):
            problems.append(f'{label}: config.env name "{shown}" must be letters, digits and _, not a digit first')
        elif name in WORKER_VARIABLES:
            problems.append(f"{label}: config.env.{name} is set by the worker")
        elif not isinstance(value, str) or "\0" in value:
            problems.append(f"{label}: config.env.{name} must be a string without NUL characters")
    return problems


def _node_ids(nodes: Any) -> set[str]:
    if not isinstance(nodes, list):
        return set()
    return {n["node_id"] for n in nodes if isinstance(n, Mapping) and isinstance(n.get("node_id"), str)}


def _edge_problems(edges: Any, node_ids: set[str]) -> list[str]:
    if not isinstance(edges, list):
        return ["edges must be a list"]
    problems: list[str] = []
    for i, edge in enumerate(edges):
        if not isinstance(edge, Mapping):
            problems.append(f"edges[{i}] must be an object")
            continue
        label = f"edge {i} ({display_value(edge.get('from_node'))} -> {display_value(edge.get('to_node'))})"
        for end in ("from_node", "to_node"):
            value = edge.get(end)
            if blank(value):
                problems.append(f"{label}: {end} must be a non-blank string")
            elif value not in node_ids:
                problems.append(f'{label}: {end} "{display_value(value)}" is not a node')
    return problems


def _entrypoint_problems(entrypoints: Any, node_ids: set[str]) -> list[str]:
    if not isinstance(entrypoints, list):
        return ["entrypoints must be a list"]
    return [
        f'entrypoints[{i}]: "{display_value(e)}" is not a node'
        for i, e in enumerate(entrypoints)
        if not (isinstance(e, str) and e in node_ids)  # an unhashable entry must not reach the set
    ]


def _section_problems(document: Mapping[str, Any], key: Any) -> list[str]:
    problems: list[str] = []
    deployment = document.get("deployment", {})
    if not isinstance(deployment, Mapping):
        problems.append("deployment must be an object")
    elif "key" in deployment and blank(deployment["key"]):
        problems.append("deployment.key must be a string")
    # every source that could be the key, not just the one chosen: a blank one never is
    problems.extend(
        f"{name} must not hold control characters"
        for name, value in key_sources(document, key)
        if not blank(value) and has_control(value)
    )
    problems.extend(
        f"{name} is longer than {MAX_NAME} characters ({len(value.strip())})"
        for name, value in key_sources(document, key)
        if not blank(value) and len(value.strip()) > MAX_NAME
    )
    if "job_type" in document and blank(document["job_type"]):
        problems.append("job_type must be a non-blank string")
    return problems


def _policy_problems(document: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> list[str]:
    """Field problems of `policies.update` and of the overrides (validated alike, SEMANTICS §2)."""
    problems: list[str] = []
    policies = document.get("policies", {})
    if not isinstance(policies, Mapping):
        problems.append("policies must be an object")
    elif "update" in policies:
        problems.extend(update_policy.validate_update(policies["update"]))
    if overrides is not None:
        problems.extend(update_policy.validate_update(overrides))
    return problems


def runtime_ids(node_id: str, count: int) -> list[str]:
    """A node's runtime ids: `<node_id>-<i>` for a node with count > 1, the node id otherwise, in natural order."""
    return [node_id] if count == 1 else [f"{node_id}-{i}" for i in range(count)]
