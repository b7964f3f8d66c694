"""The operator's client of the controller's JobService: one call per deployment RPC, one place for errors.

Every RPC answers `result_json`; a `Reply` keeps that text as it came (what `--json` prints) beside its
decoded form (what the views read). Every failure becomes an `ApiError` carrying the one line a user sees
and the exit code the CLI documents, and whether it is `transient`: a controller that did not answer, as during a
failover, which a command that waits may ride out.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# gRPC's core writes its own lines to stderr, down to INFO unless told otherwise (a controller stepping down sends
# a GOAWAY, logged as one); a command's stderr is its own one-line messages. The setting is read when grpc is first
# imported, which in `mn-deploy` is here; one the user made wins.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import grpc

from backends.protocol import job_pb2, job_pb2_grpc
from backends.protocol.credentials import TOKEN_ENV, TOKEN_FILE_ENV, bearer, token_lines
from backends.protocol.sizes import client_options
from mn_deploy_core.records import deployment_number

DEFAULT_TARGET = "127.0.0.1:55051"
# Long enough for a deploy that uploads a large bundle; a controller that is up answers in milliseconds.
TIMEOUT_S = 15.0
# The interface version MirrorNeuron's clients put in every request.
_INTERFACE_VERSION = 1

# Exit codes: the command was refused (fix the command), or the controller could not answer (retrying may help).
EXIT_REFUSED = 2
EXIT_CONTROLLER = 3

# Not answered (nothing is known about the call): during a failover the old leader is gone or paused and the new
# one is not serving yet.
_TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
# The channel's reconnect backoff grows to 120 s by default; a client that waits for a failover must see the new
# leader within a second of it serving.
_CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    *client_options(),
]

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
    """A call that did not succeed; `message` is one line, `exit_code` says whose problem it is, `transient`
    whether the controller did not answer (UNAVAILABLE, DEADLINE_EXCEEDED), which asking again later may mend."""

    def __init__(self, message: str, exit_code: int, *, transient: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.transient = transient


@dataclass(frozen=True)
class Reply:
    text: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Credentials:
    """What a call carries to a controller that lets no one in: a token and the variable it came from (named
    when the controller refuses it), and the CA certificate (PEM) a TLS controller's certificate is checked
    against (None: plain text)."""

    token: str | None = None
    source: str | None = None
    tls_ca: bytes | None = None

    def __repr__(self) -> str:  # never the token, in a log or a traceback
        return f"Credentials(source={self.source!r}, tls={self.tls_ca is not None})"

    @classmethod
    def from_env(cls, tls_ca: Path | None = None, env: Mapping[str, str] = os.environ) -> Credentials:
        """As the official CLI finds its token: `MN_GRPC_AUTH_TOKEN`, else the file `MN_GRPC_AUTH_TOKEN_FILE`
        names (its first token); a file that cannot be read is refused rather than ignored."""
        ca = _read(tls_ca, "--tls-ca").encode() if tls_ca is not None else None
        if env.get(TOKEN_ENV, "").strip():
            return cls(env[TOKEN_ENV].strip(), TOKEN_ENV, ca)
        path = env.get(TOKEN_FILE_ENV, "").strip()
        if not path:
            return cls(tls_ca=ca)
        tokens = token_lines(_read(Path(path), TOKEN_FILE_ENV))
        if not tokens:
            raise ApiError(f"{TOKEN_FILE_ENV} {path} holds no token", EXIT_REFUSED)
        return cls(tokens[0], TOKEN_FILE_ENV, ca)


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise ApiError(f"cannot read {what} {path}: {reason}", EXIT_REFUSED) from None


def _creation_order(record: Mapping[str, Any]) -> tuple[int, str]:
    """A record's place, oldest first: its deployment number, allocated in creation order."""
    deployment_id = str(record.get("deployment_id"))
    return deployment_number(deployment_id), deployment_id


class DeploymentApi:
    """The nine deployment RPCs of one controller. The channel connects at the first call."""

    def __init__(self, target: str, timeout_s: float = TIMEOUT_S, credentials: Credentials | None = None) -> None:
        self.target = target
        self._timeout_s = timeout_s
        self._credentials = credentials or Credentials()
        self._metadata = bearer(self._credentials.token) if self._credentials.token else ()
        if self._credentials.tls_ca is None:
            self._channel = grpc.insecure_channel(target, options=_CHANNEL_OPTIONS)
        else:
            tls = grpc.ssl_channel_credentials(root_certificates=self._credentials.tls_ca)
            self._channel = grpc.secure_channel(target, tls, options=_CHANNEL_OPTIONS)
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

    def get(self, id_or_key: str, timeout_s: float | None = None) -> Reply:
        """The record plus every version of its key; `timeout_s` replaces the client's for this call."""
        request = job_pb2.GetDeploymentRequest(id_or_key=id_or_key, version=_INTERFACE_VERSION)
        return self._call(self._stub.GetDeployment, request, timeout_s)

    def list(self, key: str | None, status: str | None) -> Reply:
        """Every matching record, page after page (each reply holds one page; see `next`), as one reply, oldest
        first: pages come by id, where `dep_x_17` sorts before `dep_x_5`, so the records are ordered by number."""
        filters = {name: value for name, value in (("deployment_key", key), ("status", status)) if value}
        rows: list[Any] = []
        after = None
        while True:
            query = {**filters, **({"after": after} if after else {})}
            request = job_pb2.ListDeploymentsRequest(query_json=json.dumps(query), version=_INTERFACE_VERSION)
            page = self._call(self._stub.ListDeployments, request).data
            rows += page.get("data", [])
            after = page.get("next")
            if not after:
                rows.sort(key=_creation_order)
                data = {"data": rows, "version": page.get("version", _INTERFACE_VERSION)}
                return Reply(json.dumps(data), data)

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

    def _call(
        self, method: Callable[..., job_pb2.DeploymentResponse], request: Any, timeout_s: float | None = None
    ) -> Reply:
        timeout = self._timeout_s if timeout_s is None else timeout_s
        try:
            response = method(request, timeout=timeout, metadata=self._metadata)
        except grpc.RpcError as error:
            raise self._error(error, timeout) from None
        return Reply(response.result_json, self._decoded(response.result_json))

    def _decoded(self, text: str) -> dict[str, Any]:
        """Every result is a JSON object; anything else (bad syntax, nesting too deep for Python's parser, which
        raises RecursionError) is a broken controller, reported in one line rather than a traceback."""
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as error:
            problem = "is nested too deep" if isinstance(error, RecursionError) else f"is not valid: {error}"
            raise ApiError(f"the controller at {self.target} answered JSON that {problem}", EXIT_CONTROLLER) from None
        if not isinstance(data, dict):
            raise ApiError(f"the controller at {self.target} answered JSON that is not an object", EXIT_CONTROLLER)
        return data

    def _error(self, error: grpc.RpcError, timeout_s: float) -> ApiError:
        code, details = error.code(), " ".join((error.details() or "").split())
        if code in _REFUSALS:
            return ApiError(details, EXIT_REFUSED)
        if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            return ApiError(self._refused(code), EXIT_REFUSED)
        if code is grpc.StatusCode.UNAVAILABLE:
            message = f"cannot reach the controller at {self.target}: start one with `mn-deploy dev up`"
        elif code is grpc.StatusCode.DEADLINE_EXCEEDED:
            message = f"the controller at {self.target} did not answer within {timeout_s:g} s"
        else:
            message = f"the controller at {self.target} failed ({code.name}): {details}"
        return ApiError(message, EXIT_CONTROLLER, transient=code in _TRANSIENT)

    def _refused(self, code: grpc.StatusCode) -> str:
        """What to set, for a call the controller did not let in."""
        source = self._credentials.source
        if source is None:
            return (
                f"the controller at {self.target} requires a token: set {TOKEN_FILE_ENV} to its token file "
                f"(or {TOKEN_ENV} to the token)"
            )
        if code is grpc.StatusCode.PERMISSION_DENIED:
            return f"the token of {source} may only read on the controller at {self.target}: set one that may write"
        return f"the controller at {self.target} refused the token of {source}: set {source} to one it accepts"
