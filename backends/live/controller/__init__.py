"""The controller daemon: the real-time driver of the core, the leader lease, the orders to workers, and
MirrorNeuron's gRPC services (`mirrorneuron.job.v1` JobService over our Controller,
`mirrorneuron.cluster.v1` ClusterService's lookups over discovery)."""

from backends.live.controller.job_service import JobService, status_code
from backends.live.controller.server import DEFAULT_ADDRESS, serve

__all__ = ["DEFAULT_ADDRESS", "JobService", "serve", "status_code"]
