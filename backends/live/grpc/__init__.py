"""MirrorNeuron's gRPC JobService (`mirrorneuron.job.v1`) over our Controller.

job.proto copies the SDK's messages and field numbers; job_pb2*.py are generated from it by
scripts/regen_proto.py (do not edit them by hand).
"""

from backends.live.grpc.server import DEFAULT_ADDRESS, serve
from backends.live.grpc.service import JobService, status_code

__all__ = ["DEFAULT_ADDRESS", "JobService", "serve", "status_code"]
