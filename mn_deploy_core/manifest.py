"""MirrorNeuron manifests (R1, R3): loading, key resolution, agents and their digests, topology.

`load_manifest` collects every problem (`manifest_problems`: one line each, naming the node or edge) before
anything is written. The loaded `Manifest` keeps the effective document (key and policy overrides written in), so a
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
from mn_deploy_core.errors import InvalidManifestError
from mn_deploy_core.limits import blank
from mn_deploy_core.manifest_problems import document_problems, key_sources, not_json_problems, runtime_ids
from mn_deploy_core.policy import ReschedulePolicy, UpdatePolicy
from mn_deploy_core.ports import RestartPolicy

LONG_RUNNING = frozenset({"service", "system"})
_AGENT_FIELDS = ("agent_type", "type", "role", "config", "resources", "constraints", "services")
_DIGITS = re.compile(r"(\d+)")


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


def resolve_key(document: Mapping[str, Any], override: str | None = None) -> str | None:
    """The first non-blank of: override, metadata.deployment_key, deployment.key, policies.deployment_key,
    job_name, graph_id (reference §2)."""
    for _, candidate in key_sources(document, override):
        if not blank(candidate):
            return str(candidate).strip()
    return None


def _agent_checks(node: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    names: list[str] = []
    checks: list[str] = []
    for service in node.get("services", []):
        names.append(str(service["name"]))
        for c, check in enumerate(service.get("checks", [])):
            checks.append(str(check.get("name") or f"{service['name']}:{c}"))
    return tuple(checks), tuple(names)


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
        agents.extend(AgentSpec(a, node_id, node, agent_digest, checks, services) for a in runtime_ids(node_id, count))
    if len(nodes) > 1:  # one node's ids come in natural order already
        agents.sort(key=lambda a: runtime_order(a.agent_id))
    return {a.agent_id: a for a in agents}


def topology_signature(agent_ids: Sequence[str], edges: Sequence[Any], entrypoints: Sequence[Any]) -> str:
    """Same signature = same agent ids, edges (from, to, message_type, routing_mode) and entrypoints."""
    fields = ("from_node", "to_node", "message_type", "routing_mode")
    edge_keys = sorted(tuple(str(e.get(f)) for f in fields) for e in edges)
    return digest([sorted(agent_ids), edge_keys, sorted(map(str, entrypoints))])


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
    not_json = not_json_problems(document, overrides, key)
    if not_json:
        raise InvalidManifestError(not_json)
    problems, policy_fields_valid = document_problems(document, overrides, key)
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
    if policy_fields_valid:
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
