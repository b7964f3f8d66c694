"""MirrorNeuron manifests (R1, R3): validation, key resolution, runtime ids, digests, topology.

`load_manifest` collects every problem (one line each, naming the node or edge) before anything is
written. The loaded `Manifest` keeps the effective document (key and policy overrides written in), so a
version record can redeploy exactly what ran. Inputs are bounded (see `limits`), so a few bytes of JSON
cannot exhaust the controller.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mn_deploy_core import policy as update_policy
from mn_deploy_core.checks import service_problems
from mn_deploy_core.errors import InvalidManifestError
from mn_deploy_core.limits import MAX_AGENTS, MAX_NAME, blank, has_control, json_problem
from mn_deploy_core.policy import ReschedulePolicy, UpdatePolicy, display_value
from mn_deploy_core.ports import RestartPolicy

LONG_RUNNING = frozenset({"service", "system"})
_AGENT_FIELDS = ("agent_type", "type", "role", "config", "resources", "constraints", "services")
_OBJECT_FIELDS = ("config", "resources", "constraints")
_DIGITS = re.compile(r"(\d+)")
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


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def digest(value: Any) -> str:
    # surrogatepass: load_manifest refuses lone surrogates ("\ud800"), but a digest of any value is still made
    return hashlib.sha256(canonical_json(value).encode("utf-8", "surrogatepass")).hexdigest()


def runtime_order(agent_id: str) -> tuple[Any, ...]:
    """Natural order of runtime ids, so `worker-2` comes before `worker-10`."""
    # split() with a group alternates text and digit runs, so odd positions are always the numbers
    return tuple(int(part) if i % 2 else part for i, part in enumerate(_DIGITS.split(agent_id)))


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """One agent (runtime id) at one specification."""

    agent_id: str
    node_id: str
    node: Mapping[str, Any]
    digest: str
    checks: tuple[str, ...]
    services: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Manifest:
    """A validated manifest with everything routing needs precomputed."""

    document: Mapping[str, Any]
    key: str
    job_type: str
    policy: UpdatePolicy
    restart: RestartPolicy
    reschedule: ReschedulePolicy
    agents: Mapping[str, AgentSpec]
    spec_digest: str
    topology: str
    bundle: str | None = None
    overrides_ignored: tuple[str, ...] = ()
    """R15: fields of the call's overrides the manifest's own `policies.update` kept (sorted)."""

    @property
    def long_running(self) -> bool:
        return self.job_type in LONG_RUNNING

    @property
    def healthy_deadline_ms(self) -> float:
        """R3b: a batch instance is not health gated, so nothing makes it unhealthy but failing."""
        return self.policy.healthy_deadline_ms if self.long_running else math.inf

    def agent_ids(self) -> tuple[str, ...]:
        return tuple(self.agents)


def _key_sources(document: Mapping[str, Any], override: Any) -> tuple[tuple[str, Any], ...]:
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


def resolve_key(document: Mapping[str, Any], override: str | None = None) -> str | None:
    """The first non-blank of: override, metadata.deployment_key, deployment.key, policies.deployment_key,
    job_name, graph_id (reference §2)."""
    for _, candidate in _key_sources(document, override):
        if not blank(candidate):
            return str(candidate).strip()
    return None


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
    runtime_ids: set[str] = set()
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
        count_problem = _count_problem(label, count, len(runtime_ids))
        if count_problem is not None:
            problems.append(count_problem)
        elif fresh:
            ids = _runtime_ids(str(node_id), count)
            clash = next((a for a in ids if a in runtime_ids), None)
            if clash is not None:
                problems.append(f'{label}: runtime id "{display_value(clash)}" is already used')
            runtime_ids.update(ids)
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
        for name, value in _key_sources(document, key)
        if not blank(value) and has_control(value)
    )
    problems.extend(
        f"{name} is longer than {MAX_NAME} characters ({len(value.strip())})"
        for name, value in _key_sources(document, key)
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


def _agent_checks(node: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    names: list[str] = []
    checks: list[str] = []
    for service in node.get("services", []):
        names.append(str(service["name"]))
        for c, check in enumerate(service.get("checks", [])):
            checks.append(str(check.get("name") or f"{service['name']}:{c}"))
    return tuple(checks), tuple(names)


def _runtime_ids(node_id: str, count: int) -> list[str]:
    return [node_id] if count == 1 else [f"{node_id}-{i}" for i in range(count)]


def _with_bundle(spec: dict[str, Any], bundle: str | None) -> dict[str, Any]:
    """Payloads are part of what runs: a new bundle changes every digest (none given: unchanged)."""
    return spec if bundle is None else {**spec, "bundle": bundle}


def expand_agents(nodes: Sequence[Mapping[str, Any]], bundle: str | None = None) -> dict[str, AgentSpec]:
    """Runtime ids in natural order: `<node_id>-<i>` for a node with count > 1, the node id otherwise."""
    agents: list[AgentSpec] = []
    for node in nodes:
        node_id = str(node["node_id"])
        count = int(node.get("count", 1))
        spec = _with_bundle({name: node.get(name) for name in _AGENT_FIELDS}, bundle)
        agent_digest = digest(spec)
        checks, services = _agent_checks(node)
        agents.extend(AgentSpec(a, node_id, node, agent_digest, checks, services) for a in _runtime_ids(node_id, count))
    if len(nodes) > 1:  # one node's ids come in natural order already
        agents.sort(key=lambda a: runtime_order(a.agent_id))
    return {a.agent_id: a for a in agents}


def topology_signature(agent_ids: Sequence[str], edges: Sequence[Any], entrypoints: Sequence[Any]) -> str:
    """Same signature = same agent ids, edges (from, to, message_type, routing_mode) and entrypoints."""
    fields = ("from_node", "to_node", "message_type", "routing_mode")
    edge_keys = sorted(tuple(str(e.get(f)) for f in fields) for e in edges)
    return digest([sorted(agent_ids), edge_keys, sorted(map(str, entrypoints))])


def _not_json_problems(document: Mapping[str, Any], overrides: Any, key: Any) -> list[str]:
    """`json_problem` of the document, the overrides and the call's key (it is written into the document). Like
    a document that is no object, these are refused alone: the other checks quote values in messages and digest
    them, both recursively."""
    named = (
        ("manifest", document),
        ("update policy overrides", overrides),
        ("the call's key", key if isinstance(key, str) else None),  # any other is never the key
    )
    return [f"{name}: {problem}" for name, value in named if (problem := json_problem(value)) is not None]


def load_manifest(
    document: Any,
    overrides: Mapping[str, Any] | None = None,
    key: str | None = None,
    bundle: str | None = None,
) -> Manifest:
    """Validate `document` and `overrides` together and build the effective manifest.

    `bundle` is the fingerprint of the payloads shipped with it, if any. Raises InvalidManifestError
    listing every problem; nothing has been written at that point.
    """
    if not isinstance(document, Mapping):
        raise InvalidManifestError(["manifest must be a JSON object"])
    not_json = _not_json_problems(document, overrides, key)
    if not_json:
        raise InvalidManifestError(not_json)
    problems = _section_problems(document, key)
    policy_problems = _policy_problems(document, overrides)
    problems.extend(policy_problems)
    nodes = document.get("nodes")
    problems.extend(_node_problems(nodes))
    node_ids = _node_ids(nodes)
    problems.extend(_edge_problems(document.get("edges", []), node_ids))
    problems.extend(_entrypoint_problems(document.get("entrypoints", []), node_ids))
    resolved = resolve_key(document, key)
    if resolved is None:
        problems.append("deployment key is missing: set deployment.key, job_name or graph_id")
    policies = document.get("policies", {})
    policies = policies if isinstance(policies, Mapping) else {}
    applied, kept = update_policy.call_overrides(policies.get("update"), overrides)
    raw_update = update_policy.merged(policies.get("update"), applied)
    effective_policy = update_policy.normalize(raw_update)
    restart = update_policy.restart_policy(policies, problems)
    reschedule = update_policy.reschedule_policy(policies, problems)
    if not policy_problems:
        # cross-field rules need valid fields, but are collected alongside any other problem
        problems.extend(update_policy.validate_combined(effective_policy))
    if problems:
        raise InvalidManifestError(problems)
    assert resolved is not None
    effective = dict(document)
    deployment = document.get("deployment", {})
    effective["deployment"] = {**deployment, "key": resolved}
    effective["policies"] = {**policies, "update": raw_update}
    return _build(effective, resolved, effective_policy, restart, reschedule, bundle, kept)


def _build(
    document: Mapping[str, Any],
    key: str,
    policy: UpdatePolicy,
    restart: RestartPolicy,
    reschedule: ReschedulePolicy,
    bundle: str | None,
    overrides_ignored: tuple[str, ...] = (),
) -> Manifest:
    nodes = document["nodes"]
    edges = document.get("edges", [])
    entrypoints = document.get("entrypoints", [])
    agents = expand_agents(nodes, bundle)
    job_type = str(document.get("job_type") or "batch").strip().lower()
    spec = _with_bundle({"job_type": job_type, "nodes": nodes, "edges": edges, "entrypoints": entrypoints}, bundle)
    return Manifest(
        document=document,
        key=key,
        job_type=job_type,
        policy=policy,
        restart=restart,
        reschedule=reschedule,
        agents=agents,
        spec_digest=digest(spec),
        topology=topology_signature(list(agents), edges, entrypoints),
        bundle=bundle,
        overrides_ignored=overrides_ignored,
    )


def changed_agents(running: Mapping[str, str], target: Manifest) -> tuple[str, ...]:
    """Agents without a live instance at the target's spec, in runtime-id order (R3).

    `running` maps each agent with a live instance to its spec digest; an agent missing from it (none
    placed, or failed for good) is changed whatever the target.
    """
    return tuple(a for a, spec in target.agents.items() if running.get(a) != spec.digest)
