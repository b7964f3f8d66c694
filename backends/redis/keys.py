"""Key names: MirrorNeuron's layout (reference §13) under one namespace, plus the keys only we add.

Every name is `<namespace>:<path>`. Lua scripts that must reach a key they only learn while running (the old
key of a moved deployment, an instance found in an index) get `prefix` and build the same names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_NAMESPACE = "mirror_neuron"


def namespace_from_env() -> str:
    """The namespace a MirrorNeuron installation uses (`MN_REDIS_NAMESPACE`), so both read the same keys."""
    return os.environ.get("MN_REDIS_NAMESPACE") or DEFAULT_NAMESPACE


@dataclass(frozen=True, slots=True)
class Keys:
    namespace: str

    @property
    def prefix(self) -> str:
        return f"{self.namespace}:"

    # MirrorNeuron's keys.
    def deployment(self, deployment_id: str) -> str:
        return f"{self.deployment_prefix}{deployment_id}"

    @property
    def deployment_prefix(self) -> str:
        return f"{self.prefix}deployment:"

    @property
    def deployments(self) -> str:
        return f"{self.prefix}deployments"

    def current(self, key: str) -> str:
        return f"{self.prefix}deployment:key:{key}:current"

    def key_deployments(self, key: str) -> str:
        return f"{self.prefix}deployment:key:{key}:deployments"

    def version(self, key: str, version: str) -> str:
        return f"{self.version_prefix(key)}{version}"

    def version_prefix(self, key: str) -> str:
        return f"{self.prefix}deployment:key:{key}:version:"

    def versions(self, key: str) -> str:
        return f"{self.prefix}deployment:key:{key}:versions"

    @property
    def status_stream(self) -> str:
        return f"{self.prefix}runtime:cluster:status:events"

    # Ours: counters, the full event history, the service registry.
    @property
    def last_number(self) -> str:
        return f"{self.prefix}deployments:last_number"

    def last_version(self, key: str) -> str:
        return f"{self.prefix}deployment:key:{key}:last_version"

    def events(self, deployment_id: str) -> str:
        return f"{self.prefix}deployment:{deployment_id}:events"

    def inputs(self, deployment_id: str) -> str:
        """Stream: what went into the deployment's decisions, in the order the controller took it in (fields
        `t_ms`, `entry`: raw facts and accepted operator calls, docs/traces.md), for `deployment export`."""
        return f"{self.prefix}deployment:{deployment_id}:inputs"

    def lives(self, deployment_id: str) -> str:
        """Hash: instance id -> the last record of each of the deployment's instances that stopped (the live ones
        are in `live_instances`), so a trace tells every instance's whole life."""
        return f"{self.prefix}deployment:{deployment_id}:lives"

    @property
    def live_instances(self) -> str:
        """Hash: instance id -> the controller's record of a live instance (for taking over after a restart)."""
        return f"{self.prefix}rollout:instances"

    @property
    def controller_lease(self) -> str:
        """String `<owner>:<token>` with a TTL: who leads; every store write of a fenced writer checks it."""
        return f"{self.prefix}controller:lease"

    @property
    def controller_fence(self) -> str:
        """Counter: the last fencing token handed out; each new lease term takes the next one."""
        return f"{self.prefix}controller:fence"

    def instance(self, instance_id: str) -> str:
        return f"{self.prefix}registry:instance:{instance_id}"

    def service(self, name: str) -> str:
        return f"{self.prefix}registry:service:{name}"

    def service_key(self, key: str) -> str:
        return f"{self.prefix}registry:key:{key}"

    # The live runtime: worker nodes, what each should run, and the facts they report.
    @property
    def nodes(self) -> str:
        """Set: nodes whose worker registered and that the controller has not dropped as lost."""
        return f"{self.prefix}rollout:nodes"

    @property
    def node_prefix(self) -> str:
        """`<prefix><node>:heartbeat|desired|assignments`, as expire_nodes.lua builds them."""
        return f"{self.prefix}rollout:node:"

    def node_heartbeat(self, node: str) -> str:
        """String with a PX TTL, renewed by the node's worker: while it exists the node is live."""
        return f"{self.node_prefix}{node}:heartbeat"

    def node_desired(self, node: str) -> str:
        """Hash: instance id -> placement JSON, what the node's worker should be running."""
        return f"{self.node_prefix}{node}:desired"

    def node_assignments(self, node: str) -> str:
        """Stream: place, stop and resync orders for the node's worker, in the order they were given."""
        return f"{self.node_prefix}{node}:assignments"

    def node_runtime(self, node: str) -> str:
        """Hash: instance id -> JSON of what the node's worker knows of its process (pid, port, state, since,
        restarts); written on change, expiring with the node's heartbeat (backends/redis/instance_runtime.py)."""
        return f"{self.node_prefix}{node}:runtime"

    @property
    def node_ttl(self) -> str:
        """String: the heartbeat TTL in ms the controller expects; workers set their heartbeat with it."""
        return f"{self.prefix}rollout:node_ttl_ms"

    @property
    def assigned(self) -> str:
        """Hash: instance id -> the node it was assigned to."""
        return f"{self.prefix}rollout:assigned"

    @property
    def unassigned(self) -> str:
        """Hash: instance id -> placement JSON, placed while no node was live."""
        return f"{self.prefix}rollout:unassigned"

    @property
    def facts(self) -> str:
        """Stream: instance facts from the workers, read by the controller's consumer group."""
        return f"{self.prefix}rollout:facts"

    # Instance logs, written by the workers (backends/live/worker/logs.py), read by `mn-deploy deployment logs`.
    def instance_log(self, instance_id: str) -> str:
        """Stream: the instance's newest lines (fields `stream`, `line`, `t_ms`), through its restarts."""
        return f"{self.prefix}rollout:logs:instance:{instance_id}"

    def version_logs(self, key: str, version: str) -> str:
        """Sorted set: the instances of a key's version that logged, as JSON `{agent_id, instance_id, node}`,
        scored by the time of their last line in ms."""
        return f"{self.prefix}rollout:logs:key:{key}:version:{version}"

    # Patterns the retention sweep scans with.
    @property
    def key_prefix(self) -> str:
        return f"{self.prefix}deployment:key:"
