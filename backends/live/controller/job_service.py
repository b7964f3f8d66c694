"""MirrorNeuron's `JobService` over our Controller: the nine deployment RPCs, and `GetJob`, `ListJobs` and
`CancelJob` for the jobs deployments create (jobs.py); the other job methods answer UNIMPLEMENTED (server.py).

Every controller call runs under one lock that the real-time driver thread also holds while it feeds facts
and ticks, so an RPC never sees a half-applied decision. A bundle is uploaded before the lock is taken (it is
content-addressed and expires unless persisted, so a deploy refused for the state it meets leaves nothing a later
one would trip over); bad input (a manifest the core refuses, an unsafe path) is refused before it, so it writes
nothing at all. The deploy keeps the fingerprint with the version, and the bundle is persisted once it is accepted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

import grpc
import redis

from backends.live.controller import arguments, jobs, results
from backends.live.controller.bundles import BundleStore
from backends.protocol import job_pb2, job_pb2_grpc
from backends.protocol.bundles import check_payload_paths
from backends.protocol.sizes import check_sizes
from backends.redis import BrokenTransactionError, FencedError
from backends.redis.instance_runtime import InstanceRuntime
from mn_deploy_core.controller import Controller
from mn_deploy_core.errors import ConflictError, DeploymentError, NotFoundError
from mn_deploy_core.manifest import load_manifest
from mn_deploy_core.policy import display_value
from mn_deploy_core.records import DeploymentRecord

Context = grpc.ServicerContext
Response = job_pb2.DeploymentResponse
T = TypeVar("T")


def status_code(error: DeploymentError) -> grpc.StatusCode:
    """NOT_FOUND for unknown ids and keys, ABORTED for a lost write race, INVALID_ARGUMENT for the rest
    (bad input and refused actions), as MirrorNeuron answers (reference §14)."""
    if isinstance(error, NotFoundError):
        return grpc.StatusCode.NOT_FOUND
    if isinstance(error, ConflictError):
        return grpc.StatusCode.ABORTED
    return grpc.StatusCode.INVALID_ARGUMENT


MAX_DETAIL_BYTES = 2000
"""UTF-8 bytes of an error's details at most. They travel in a header (`grpc-message`, percent-encoded, so up to
three times longer) that clients refuse somewhere over 8 KiB: a message quoting a huge id or name would reach the
caller as RESOURCE_EXHAUSTED instead of itself."""


def detail(message: str) -> str:
    """`message` as an RPC's error details: one line (line breaks and other non-printable characters escaped),
    cut to MAX_DETAIL_BYTES."""
    line = display_value(message)
    encoded = line.encode("utf-8", "backslashreplace")
    if len(encoded) <= MAX_DETAIL_BYTES:
        return line
    kept = encoded[: MAX_DETAIL_BYTES - 40].decode("utf-8", "ignore")
    return f"{kept}... ({len(line):,} characters in all)"


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
        runtime: InstanceRuntime | None = None,
    ) -> None:
        """`runtime`: where workers keep their instances' nodes and processes; without it a GetDeployment lists
        instances without them."""
        self._controller = controller
        self._lock = lock
        self._bundles = bundles
        self._clock = clock
        self._runtime = runtime

    # ---- the nine deployment RPCs ------------------------------------------------------------

    def DeployJob(self, request: job_pb2.DeployJobRequest, context: Context) -> Response:
        """A new key is deployed; an existing key is updated (routed by the core, R3)."""
        return self._deploy(request, context)

    def UpdateDeployment(self, request: job_pb2.UpdateDeploymentRequest, context: Context) -> Response:
        return self._deploy(request, context)

    def GetDeployment(self, request: job_pb2.GetDeploymentRequest, context: Context) -> Response:
        return self._answer(context, lambda: self._described(self._controller.get(request.id_or_key)))

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
            version = arguments.version(request.version)
            tag, reason = (arguments.optional(v) for v in (request.tag, request.reason))
            record = self._controller.rollback(request.id_or_key, version, reason, tag=tag, now=self._clock())
            return self._started(record)

        return self._answer(context, call)

    def PauseDeployment(self, request: job_pb2.DeploymentActionRequest, context: Context) -> Response:
        return self._action(request, context, self._controller.pause)

    def ResumeDeployment(self, request: job_pb2.DeploymentActionRequest, context: Context) -> Response:
        return self._action(request, context, self._controller.resume)

    def FailDeployment(self, request: job_pb2.DeploymentActionRequest, context: Context) -> Response:
        return self._action(request, context, self._controller.fail)

    # ---- the jobs deployments create ----------------------------------------------------------

    def GetJob(self, request: job_pb2.GetJobRequest, context: Context) -> job_pb2.GetJobResponse:
        job = self._locked(context, lambda: jobs.find(self._controller, request.job_id.strip()))
        return job_pb2.GetJobResponse(job_json=_compact(job.to_json()), version=results.INTERFACE_VERSION)

    def ListJobs(self, request: job_pb2.ListJobsRequest, context: Context) -> job_pb2.ListJobsResponse:
        """`{data}`, newest first, without instances; a `limit` of 0 or less means all of them."""
        found = self._locked(context, lambda: jobs.every_job(self._controller))
        kept = [job for job in found if request.include_terminal or job.running]
        shown = kept[: request.limit] if request.limit > 0 else kept
        document = {"data": [job.to_json(instances=False) for job in shown]}
        return job_pb2.ListJobsResponse(jobs_json=_compact(document), version=results.INTERFACE_VERSION)

    def CancelJob(self, request: job_pb2.CancelJobRequest, context: Context) -> job_pb2.CancelJobResponse:
        """What the core can do to the job (jobs.cancel); the status is the job's after."""
        job_id = request.job_id.strip()
        job = self._locked(context, lambda: jobs.cancel(self._controller, job_id, now=self._clock()))
        return job_pb2.CancelJobResponse(job_id=job_id, status=job.status, version=results.INTERFACE_VERSION)

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
            key = arguments.optional(request.deployment_key)
            if request.payloads:  # the core validates again when it deploys; a manifest it refuses uploads nothing
                load_manifest(manifest, overrides, key)
            fingerprint = self._bundles.put(dict(request.payloads)) if request.payloads else None
        except DeploymentError as error:
            context.abort(status_code(error), detail(error.message))  # raises

        def call() -> Mapping[str, Any]:
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
        result = self._locked(context, call)
        return job_pb2.DeploymentResponse(result_json=results.encode(result), version=results.INTERFACE_VERSION)

    def _locked(self, context: Context, call: Callable[[], T]) -> T:
        """`call()` under the controller lock; a user's error, or a lost lease or Redis, aborts the RPC."""
        try:
            with self._lock:
                return call()
        except DeploymentError as error:
            context.abort(status_code(error), detail(error.message))  # raises
        except (FencedError, BrokenTransactionError, redis.RedisError) as error:
            # another controller took the lease, or this one is taking over again after a decision it could not
            # store (which was then not applied): the client should retry, against whoever leads next
            context.abort(grpc.StatusCode.UNAVAILABLE, str(error))  # raises

    def _started(self, record: DeploymentRecord) -> dict[str, Any]:
        versions = self._controller.versions(record.deployment_key)
        version = next(v for v in versions if v.version == record.target_version)
        return results.started(record, version)

    def _described(self, record: DeploymentRecord) -> dict[str, Any]:
        """Get: the record, its key's versions, and every instance of the key the controller still knows (live
        ones, and completed batch ones: the old version's beside a canary too) with where and how their processes
        run; the outcome counts are this deployment's own."""
        result = results.with_versions(record, self._controller.versions(record.deployment_key))
        instances = self._controller.instances(record.deployment_key)
        own = [i for i in instances if i.deployment_id == record.deployment_id]
        shown = results.shown_instances(instances)
        where = self._runtime.read(i.instance_id for i in shown) if self._runtime is not None else {}
        return results.with_instances(result, instances, own, shown, where)


def _compact(document: Mapping[str, Any]) -> str:
    """A job document as MirrorNeuron's runtime sends it: flat JSON, without the deployment results' envelope."""
    return json.dumps(document, separators=(",", ":"))
