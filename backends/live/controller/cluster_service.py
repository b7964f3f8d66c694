"""MirrorNeuron's `ClusterService`, as far as discovery goes: `ListServices` and `ResolveService` answer from the
registry in Redis, so the official `mn service list` and `mn service resolve` work unchanged. The other methods
(nodes, drains, resources) are not ours and answer UNIMPLEMENTED (server.py).

Who is returned is what a normal lookup returns (`backends.redis.registry.discoverable`), the same rule as
`mn-deploy service`: primaries only, so a canary or blue-green candidate is never found before its promotion, as
MirrorNeuron's remote callers cannot see candidates either (reference §12). The reads take no controller lock:
the registry is Redis's, renewed by the workers, and a lookup is one read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import grpc
import redis

from backends.live.controller import arguments, results
from backends.live.controller.job_service import detail
from backends.protocol import cluster_pb2, cluster_pb2_grpc
from backends.redis.registry import Entry, RedisRegistry, discoverable, entry_json
from mn_deploy_core.errors import DeploymentError

Context = grpc.ServicerContext


class ClusterService(cluster_pb2_grpc.ClusterServiceServicer):
    """Service discovery behind MirrorNeuron's wire API."""

    def __init__(self, registry: RedisRegistry) -> None:
        self._registry = registry

    def ListServices(
        self, request: cluster_pb2.ListServicesRequest, context: Context
    ) -> cluster_pb2.ListServicesResponse:
        """Every discoverable instance of every service (or of the one `name` filters on)."""

        def call() -> Mapping[str, Any]:
            query = arguments.service_query(request.query_json)
            found = self._registry.entries(query.name) if query.name else self._registry.all_entries()
            return services(found, query)

        return cluster_pb2.ListServicesResponse(result_json=_answer(context, call), version=results.INTERFACE_VERSION)

    def ResolveService(
        self, request: cluster_pb2.ResolveServiceRequest, context: Context
    ) -> cluster_pb2.ResolveServiceResponse:
        """The discoverable instances of service `name`; none found is an empty list, not an error, as in
        MirrorNeuron."""

        def call() -> Mapping[str, Any]:
            name = arguments.optional(request.name)
            if name is None:
                raise arguments.InvalidRequestError("name is required")
            return services(self._registry.entries(name), arguments.service_query(request.query_json))

        return cluster_pb2.ResolveServiceResponse(result_json=_answer(context, call), version=results.INTERFACE_VERSION)


def services(entries: Sequence[Entry], query: arguments.ServiceQuery) -> dict[str, Any]:
    """`{services, count}`: the entries a lookup returns that match every filter. An entry carries no tags, so a
    query that requires one matches nothing."""
    found = [service_json(e) for e in discoverable(entries, passing_only=query.passing_only)]
    wanted = {
        "node": query.node,
        "job_id": query.job_id,
        "agent_id": query.agent_id,
        "status": query.status,
    }
    found = [s for s in found if all(v is None or s[k] == v for k, v in wanted.items()) and not query.tags]
    return {"services": found, "count": len(found)}


def service_json(entry: Entry) -> dict[str, Any]:
    """An entry as `mn-deploy service list --json` prints it, plus MirrorNeuron's names for what a client
    connects to and whether it may: `id`, `address` (the worker's host), `status` (passing or critical), `tags`."""
    document = entry_json(entry)
    return {
        "id": document["instance_id"],
        "address": document["host"],
        "status": "passing" if document["passing"] else "critical",
        "tags": [],
        **document,
    }


def _answer(context: Context, call: Callable[[], Mapping[str, Any]]) -> str:
    try:
        return results.encode(call())
    except DeploymentError as error:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, detail(error.message))  # raises
    except redis.RedisError as error:
        context.abort(grpc.StatusCode.UNAVAILABLE, f"discovery could not be read: {error}")  # raises
