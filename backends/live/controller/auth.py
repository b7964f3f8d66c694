"""Who may call the gRPC API: a bearer token on every RPC of every service, as MirrorNeuron's clients send it.

The official SDK and CLI put `authorization: Bearer <token>` in each call's metadata (from `MN_GRPC_AUTH_TOKEN` or
the file `MN_GRPC_AUTH_TOKEN_FILE` names); so does `mn-deploy deployment`. A deploy runs its command on every worker
host, so a call without a token this controller accepts is answered UNAUTHENTICATED, and a read-only token may call
only the methods that read (Get*, List*, Resolve*): PERMISSION_DENIED for the others. Answers and log lines are
fixed texts: nothing of the token sent, so neither a client nor the log learns how close a guess came. Tokens are
compared with `hmac.compare_digest`, in constant time.
"""

from __future__ import annotations

import hmac
import logging
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from backends.protocol.credentials import TOKEN_ENV, TOKEN_FILE_ENV, token_lines
from backends.secret_files import too_open

log = logging.getLogger(__name__)

# Long enough that guessing is hopeless at any rate the network allows; `secrets.token_urlsafe(32)` gives 43.
MIN_TOKEN_LENGTH = 16
# The methods a read-only token may call: every method that only reads starts so.
READ_PREFIXES = ("Get", "List", "Resolve")

UNAUTHENTICATED = "missing or invalid bearer token"
READ_ONLY = "this token may only read (Get, List, Resolve)"


class TokenError(Exception):
    """A token source that cannot be used; the message is the one line a user sees, and never holds a token."""


@dataclass(frozen=True, slots=True)
class Tokens:
    """The tokens a controller accepts: `full` may call anything, `read` only the methods that read."""

    full: tuple[bytes, ...] = ()
    read: tuple[bytes, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.full or self.read)

    def __repr__(self) -> str:  # never the tokens themselves, in a log or a traceback
        return f"Tokens(full={len(self.full)}, read={len(self.read)})"


NO_TOKENS = Tokens()


def controller_tokens(
    token_file: Path | None, read_token_file: Path | None, env: Mapping[str, str] = os.environ
) -> Tokens:
    """The controller's tokens: `--auth-token-file`, else `MN_GRPC_AUTH_TOKEN`, else `MN_GRPC_AUTH_TOKEN_FILE`
    (the option is explicit; between the variables, the official client's order); read-only ones from
    `read_token_file` (`--read-token-file`, or MN_GRPC_READ_TOKEN_FILE). No token at all is an open API."""
    full: tuple[bytes, ...] = ()
    if token_file is not None:
        full = read_token_file_lines(token_file, "--auth-token-file")
    elif env.get(TOKEN_ENV, "").strip():
        full = (_checked(env[TOKEN_ENV].strip(), TOKEN_ENV),)
    elif env.get(TOKEN_FILE_ENV, "").strip():
        full = read_token_file_lines(Path(env[TOKEN_FILE_ENV].strip()), TOKEN_FILE_ENV)
    read = read_token_file_lines(read_token_file, "--read-token-file") if read_token_file is not None else ()
    if read and not full:
        raise TokenError("a read-only token needs a full one too (--auth-token-file or MN_GRPC_AUTH_TOKEN_FILE)")
    if set(read) & set(full):
        raise TokenError("a token is both read-only and full: give each its own")
    return Tokens(full, read)


def read_token_file_lines(path: Path, source: str) -> tuple[bytes, ...]:
    """The tokens of `path`, one a line (several while rotating: old and new both work); blank lines and `#`
    comments skipped. Like ssh's keys, a file that its group or others may read or write is refused: anyone on
    the host who reads it could run code on every worker host."""
    try:
        with path.open("rb") as file:
            mode = os.fstat(file.fileno()).st_mode
            text = file.read().decode("utf-8")
    except OSError as error:
        raise TokenError(f"cannot read {source} {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise TokenError(f"{source} {path} is not UTF-8 text") from None
    if not stat.S_ISREG(mode):
        raise TokenError(f"{source} {path} is not a regular file")
    if (open_to := too_open(mode)) is not None:
        raise TokenError(f"{source} {path} {open_to}")
    tokens = tuple(_checked(line, f"{source} {path}") for line in token_lines(text))
    if not tokens:
        raise TokenError(f"{source} {path} holds no token")
    return tokens


def _checked(token: str, source: str) -> bytes:
    """A token as gRPC metadata can carry it: printable ASCII, no spaces, long enough."""
    if not (token.isascii() and token.isprintable()) or any(c.isspace() for c in token):
        raise TokenError(f"the token of {source} must be printable ASCII without spaces")
    if len(token) < MIN_TOKEN_LENGTH:
        raise TokenError(f"the token of {source} is shorter than {MIN_TOKEN_LENGTH} characters")
    return token.encode("ascii")


class BearerAuth(grpc.ServerInterceptor):
    """Refuses every call without an accepted token before its method runs (or its request is even decoded)."""

    def __init__(self, tokens: Tokens) -> None:
        self._tokens = tokens

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        method = details.method.rsplit("/", 1)[-1]
        grant = self.grant(_bearer(details.invocation_metadata))
        if grant == "full" or (grant == "read" and method.startswith(READ_PREFIXES)):
            return continuation(details)
        if grant == "read":
            log.warning("refused %s: a read-only token", details.method)
            return _refusal(continuation(details), grpc.StatusCode.PERMISSION_DENIED, READ_ONLY)
        log.warning("refused %s: %s", details.method, UNAUTHENTICATED)
        return _refusal(continuation(details), grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED)

    def grant(self, sent: bytes | None) -> str | None:
        """ "full", "read" or None for the token `sent`. Every accepted token is compared, each in constant time,
        so the time taken says nothing of which one, or how much of one, matched."""
        if sent is None:
            return None
        full = [hmac.compare_digest(sent, token) for token in self._tokens.full]
        read = [hmac.compare_digest(sent, token) for token in self._tokens.read]
        return "full" if any(full) else "read" if any(read) else None


def _bearer(metadata: Any) -> bytes | None:
    """The token of the first `authorization` entry, if it is `Bearer <token>` (the scheme in any case)."""
    for key, value in metadata or ():
        if key == "authorization":
            text = value.decode("latin-1") if isinstance(value, bytes) else value
            scheme, _, token = text.partition(" ")
            return token.strip().encode("latin-1", "replace") if scheme.lower() == "bearer" else None
    return None


def _refusal(handler: grpc.RpcMethodHandler | None, code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    """A handler of the call's own kind that answers `code` at once; the request is never decoded."""

    def refuse(request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(code, message)

    if handler is not None and handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(refuse)
    if handler is not None and handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(refuse)
    if handler is not None and handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(refuse)
    return grpc.unary_unary_rpc_method_handler(refuse)
