"""How a gRPC call proves who sent it, shared by the controller that checks it and the clients that send it.

MirrorNeuron's SDK and CLI send `authorization: Bearer <token>` in every call's metadata, the token taken from
`MN_GRPC_AUTH_TOKEN`, else from the file `MN_GRPC_AUTH_TOKEN_FILE` names; `mn-deploy` does the same, so one
token serves both. A token file holds one token a line (the controller may be given several while rotating);
blank lines and `#` comments are skipped.
"""

from __future__ import annotations

TOKEN_ENV = "MN_GRPC_AUTH_TOKEN"
TOKEN_FILE_ENV = "MN_GRPC_AUTH_TOKEN_FILE"
# The CA certificate (PEM) `mn-deploy deployment` checks a TLS controller's certificate against.
TLS_CA_ENV = "MN_GRPC_TLS_CA"


def token_lines(text: str) -> list[str]:
    """The tokens of a token file's text, in order."""
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """The call metadata that carries `token`, as MirrorNeuron's clients write it."""
    return (("authorization", f"Bearer {token}"),)
