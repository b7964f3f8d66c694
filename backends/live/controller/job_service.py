"""MirrorNeuron's `JobService` over our Controller: the nine deployment RPCs; the job methods stay UNIMPLEMENTED.

Every controller call runs under one lock that the real-time driver thread also holds while it feeds facts
and ticks, so an RPC never sees a half-applied decision. A bundle is uploaded before the lock is taken (it is
content-addressed and expires unless persisted, so a refused deploy leaves nothing a later one would trip over);
the deploy keeps its fingerprint with the version, and the bundle is persisted once the deploy is accepted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any, Protocol

import grpc
import redis

from backends.live.controller import arguments, results
from backends.live.controller.bundles import BundleStore
from backends.protocol import job_pb2, job_pb2_grpc
from backends.protocol.bundles import check_payload_paths
from backends.protocol.sizes import check_sizes
from backends.redis import BrokenTransactionError, FencedError
from mn_deploy_core.controller import Controller
from mn_deploy_core.errors import ConflictError, DeploymentError, NotFoundError
from mn_deploy_core.records import DeploymentRecord

Context = grpc.ServicerContext
Response = job_pb2.DeploymentResponse


def status_code(error: DeploymentError) -> grpc.StatusCode:
    """NOT_FOUND for unknown ids and keys, ABORTED for a lost write race, INVALID_ARGUMENT for the rest
    (bad input and refused actions), as MirrorNeuron answers (reference §14)."""
    if isinstance(error, NotFoundError):
        return grpc.StatusCode.NOT_FOUND
    if isinstance(error, ConflictError):
        return grpc.StatusCode.ABORTED
    return grpc.StatusCode.INVALID_ARGUMENT


class Verb(Protocol):
    """Pause, resume or fail, as the controller takes them."""

    def __call__(self, id_or_key: str, reason: str | None = None, *, now: float) -> DeploymentRecord: ...


class JobService(job_pb2_grpc.JobServiceServicer):
    """One controller behind MirrorNeuron's wire API, so the official `mn` CLI and SDK work unchanged."""

    def __init__(
        self,
        controller: Controller,
        lock: AbstractContextManager[Any],
        bundles: BundleStore,
        clock: Callable[[], float],
    ) -> None:
        self._controller = controller
        self._lock = lock
        self._bundles = bundles
        self._clock = clock

    # ---- the nine deployment RPCs ------------------------------------------------------------

    def DeployJob(self, request: job_pb2.DeployJobRequest, context: Context) -> Response:
        """A new key is deployed; an existing key is updated (routed by the core, R3)."""
        return self._deploy(request, context)

    def UpdateDeployment(self, request: job_pb2.UpdateDeploymentRequest, context: Context) -> Response:
        return self._deploy(request, context)

    def GetDeployment(self, request: job_pb2.GetDeploymentRequest, context: Context) -> Response:
        return self._answer(context, lambda: self._with_versions(self._controller.get(request.id_or_key)))

    def ListDeployments(self, request: job_pb2.ListDeploymentsRequest, context: Context) -> Response:
        def call() -> Mapping[str, Any]:
            query = arguments.list_query(request.query_json)
            records = self._controller.list(query.key, query.status, after=query.after, limit=query.limit)
            return results.listing(records, query.limit)

        return self._answer(context, call)

    def PromoteDeployment(self, request: job_pb2.PromoteDeploymentRequest, context: Context) -> Response:
        return self._answer(
            context, lambda: self._started(self._controller.promote(request.id_or_key, now=self._clock()))
        )

    def RollbackDeployment(self, request: job_pb2.RollbackDeploymentRequest, context: Context) -> Response:
        """The core picks the version, a tag's included (R11): blanks are dropped, as MirrorNeuron does."""

        def call() -> Mapping[str, Any]:
            version, tag, reason = (arguments.optional(v) for v in (request.version, request.tag, request.reason))
            record = self._controller.rollback(request.id_or_key, version, reason, tag=tag, now=self._clock())
            return self._started(record)

        return self._answer(context, call)

    def PauseDeployment(self, request: job_pb2.DeploymentActionRequest, context: Context) -> Response:
        return self._action(request, context, self._controller.pause)

    def ResumeDeployment(self, request: job_pb2.DeploymentActionRequest, context: Context) -> Response:
        return self._action(request, context, self._controller.resume)

    def FailDeployment(self, request: job_pb2.DeploymentActionRequest, context: Context) -> Response:
        return self._action(request, context, self._controller.fail)

    # ---- mapping -------------------------------------------------------------------------------

    def _deploy(
        self, request: job_pb2.DeployJobRequest | job_pb2.UpdateDeploymentRequest, context: Context
    ) -> Response:
        """`wait` is ignored: the controller never waits, the status says how far the rollout got."""
        try:
            check_sizes(request.manifest_json, request.payloads)
            manifest = arguments.manifest(request.manifest_json)
            overrides = arguments.update_policy(request.update_policy_json)
            check_payload_paths(request.payloads)
            fingerprint = self._bundles.put(dict(request.payloads)) if request.payloads else None
        except DeploymentError as error:
            context.abort(status_code(error), error.message)  # raises

        def call() -> Mapping[str, Any]:
            key = arguments.optional(request.deployment_key)
            record = self._controller.deploy(manifest, overrides, key, bundle=fingerprint, now=self._clock())
            if fingerprint is not None:
                self._bundles.persist(fingerprint)
            return self._started(record)

        return self._answer(context, call)

    def _action(
        self,
        request: job_pb2.DeploymentActionRequest,
        context: Context,
        verb: Verb,
    ) -> Response:
        """Pause, resume, fail: the record. A blank reason keeps the default text (quirk §16.11, fixed)."""

        def call() -> Mapping[str, Any]:
            return verb(request.id_or_key, arguments.optional(request.reason), now=self._clock()).to_json()

        return self._answer(context, call)

    def _answer(self, context: Context, call: Callable[[], Mapping[str, Any]]) -> Response:
        try:
            with self._lock:
                result = call()
        except DeploymentError as error:
            context.abort(status_code(error), error.message)  # raises
        except (FencedError, BrokenTransactionError, redis.RedisError) as error:
            # another controller took the lease, or this one is taking over again after a decision it could not
            # store (which was then not applied): the client should retry, against whoever leads next
            context.abort(grpc.StatusCode.UNAVAILABLE, str(error))  # raises
        return job_pb2.DeploymentResponse(result_json=results.encode(result), version=results.INTERFACE_VERSION)

    def _started(self, record: DeploymentRecord) -> dict[str, Any]:
        versions = self._controller.versions(record.deployment_key)
        version = next(v for v in versions if v.version == record.target_version)
        return results.started(record, version)

    def _with_versions(self, record: DeploymentRecord) -> dict[str, Any]:
        return results.with_versions(record, self._controller.versions(record.deployment_key))
