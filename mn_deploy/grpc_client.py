"""The operator's client of the controller's JobService: one call per deployment RPC, one place for errors.

Every RPC answers `result_json`; a `Reply` keeps that text as it came (what `--json` prints) beside its
decoded form (what the views read). Every failure becomes an `ApiError` carrying the one line a user sees
and the exit code the CLI documents.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc

from backends.live.grpc import job_pb2, job_pb2_grpc

DEFAULT_TARGET = "127.0.0.1:55051"
# Long enough for a deploy that uploads a large bundle; a controller that is up answers in milliseconds.
TIMEOUT_S = 15.0
# The interface version MirrorNeuron's clients put in every request.
_INTERFACE_VERSION = 1

# Exit codes: the command was refused (fix the command), or the controller could not answer (retrying may help).
EXIT_REFUSED = 2
EXIT_CONTROLLER = 3

# The caller's mistake or the deployment's state: fix the command, not the environment.
_REFUSALS = frozenset(
    {
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.OUT_OF_RANGE,
    }
)


class ApiError(Exception):
    """A call that did not succeed; `message` is one line, `exit_code` says whose problem it is."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass(frozen=True)
class Reply:
    text: str
    data: dict[str, Any]


class DeploymentApi:
    """The nine deployment RPCs of one controller. The channel connects at the first call."""

    def __init__(self, target: str, timeout_s: float = TIMEOUT_S) -> None:
        self.target = target
        self._timeout_s = timeout_s
        self._channel = grpc.insecure_channel(target)
        self._stub = job_pb2_grpc.JobServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def deploy(self, manifest_json: str, payloads: Mapping[str, bytes], key: str, update_policy_json: str) -> Reply:
        """A new key is deployed, an existing one updated: the controller routes it."""
        request = job_pb2.DeployJobRequest(
            manifest_json=manifest_json,
            payloads=payloads,
            deployment_key=key,
            update_policy_json=update_policy_json,
            version=_INTERFACE_VERSION,
        )
        return self._call(self._stub.DeployJob, request)

    def get(self, id_or_key: str) -> Reply:
        """The record plus every version of its key."""
        request = job_pb2.GetDeploymentRequest(id_or_key=id_or_key, version=_INTERFACE_VERSION)
        return self._call(self._stub.GetDeployment, request)

    def list(self, key: str | None, status: str | None) -> Reply:
        query = {name: value for name, value in (("deployment_key", key), ("status", status)) if value}
        request = job_pb2.ListDeploymentsRequest(query_json=json.dumps(query), version=_INTERFACE_VERSION)
        return self._call(self._stub.ListDeployments, request)

    def promote(self, id_or_key: str) -> Reply:
        request = job_pb2.PromoteDeploymentRequest(id_or_key=id_or_key, version=_INTERFACE_VERSION)
        return self._call(self._stub.PromoteDeployment, request)

    def rollback(self, id_or_key: str, version: str, reason: str) -> Reply:
        """Blank `version` and `reason` mean "not given": the previous stable version, no reason."""
        request = job_pb2.RollbackDeploymentRequest(id_or_key=id_or_key, version=version, reason=reason)
        return self._call(self._stub.RollbackDeployment, request)

    def pause(self, id_or_key: str, reason: str) -> Reply:
        return self._call(self._stub.PauseDeployment, self._action(id_or_key, reason))

    def resume(self, id_or_key: str, reason: str) -> Reply:
        return self._call(self._stub.ResumeDeployment, self._action(id_or_key, reason))

    def fail(self, id_or_key: str, reason: str) -> Reply:
        return self._call(self._stub.FailDeployment, self._action(id_or_key, reason))

    @staticmethod
    def _action(id_or_key: str, reason: str) -> job_pb2.DeploymentActionRequest:
        return job_pb2.DeploymentActionRequest(id_or_key=id_or_key, reason=reason, version=_INTERFACE_VERSION)

    def _call(self, method: Callable[..., job_pb2.DeploymentResponse], request: Any) -> Reply:
        try:
            response = method(request, timeout=self._timeout_s)
        except grpc.RpcError as error:
            raise self._error(error) from None
        try:
            data = json.loads(response.result_json)
        except json.JSONDecodeError as error:
            message = f"the controller at {self.target} answered JSON that is not valid: {error}"
            raise ApiError(message, EXIT_CONTROLLER) from None
        return Reply(response.result_json, data)

    def _error(self, error: grpc.RpcError) -> ApiError:
        code, details = error.code(), " ".join((error.details() or "").split())
        if code in _REFUSALS:
            return ApiError(details, EXIT_REFUSED)
        if code is grpc.StatusCode.UNAVAILABLE:
            message = f"cannot reach the controller at {self.target}: start one with `mn-deploy dev up`"
        elif code is grpc.StatusCode.DEADLINE_EXCEEDED:
            message = f"the controller at {self.target} did not answer within {self._timeout_s:g} s"
        else:
            message = f"the controller at {self.target} failed ({code.name}): {details}"
        return ApiError(message, EXIT_CONTROLLER)
