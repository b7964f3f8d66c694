"""Signed orders: a worker runs a placement only if the controller's key signed it for that worker's node.

Write access to Redis alone must not run code on a worker host, so every placement the controller writes for a
node carries an HMAC-SHA256 under a key shared by the controllers and the workers (a file, never an argument).
The MAC covers the whole placement as encoded (instance, agent, job, spec digest, bundle fingerprint, the
manifest node with its command, checks, restart policy...), the key namespace and the node it is written for: a
signed order cannot be altered, nor replayed on another node or in another namespace. A placement waiting for a
node is signed for no node (`UNASSIGNED`), so the controller can tell its own from one written beside it.

The signature is one more member of the placement's JSON object (`SIGNATURE`); the signed text is the rest of the
object encoded canonically (sorted keys), so what is verified is exactly what is decoded and run.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backends.secret_files import too_open

SIGNATURE = "signature"
UNASSIGNED = ""
"""The node a placement waiting in `unassigned` is signed for: no worker has that name."""
MIN_KEY_CHARS = 32
ENV = "MN_ORDER_KEY_FILE"
_DOMAIN = "mn-deploy placement order v1"


class OrderKeyError(ValueError):
    """A key file that cannot be used; the message is one line naming the file."""


class BadOrder(ValueError):
    """An order without a valid signature: not JSON, unsigned, or signed with another key, node or content."""


@dataclass(frozen=True, slots=True)
class OrderKey:
    """The shared secret; never printed (no repr), never passed on a command line."""

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_KEY_CHARS:
            raise OrderKeyError(f"an order key needs at least {MIN_KEY_CHARS} characters")

    @classmethod
    def load(cls, path: Path) -> OrderKey:
        """The file's content without surrounding whitespace; a file others may read or write is refused, as a
        token file is: whoever reads it can sign any order."""
        try:
            secret = path.read_bytes().strip()
            mode = path.stat().st_mode
        except OSError as error:
            raise OrderKeyError(f"order key file {path}: {error.strerror or error}") from None
        if len(secret) < MIN_KEY_CHARS:
            raise OrderKeyError(f"order key file {path}: needs at least {MIN_KEY_CHARS} characters")
        if (open_to := too_open(mode)) is not None:
            raise OrderKeyError(f"order key file {path} {open_to}")
        return cls(secret)

    def sign(self, namespace: str, node: str, placement: str) -> str:
        """`placement` (wire.encode_placement's text) with its signature for `node` of `namespace`."""
        data = _object(placement)
        data.pop(SIGNATURE, None)
        data[SIGNATURE] = self._mac(namespace, node, data)
        return json.dumps(data, sort_keys=True)

    def verify(self, namespace: str, node: str, order: str) -> str:
        """The placement text of a signed order, without its signature; BadOrder unless the signature is this
        key's for exactly this content, namespace and node (compared in constant time)."""
        data = _object(order)
        signature = data.pop(SIGNATURE, None)
        if not isinstance(signature, str):
            raise BadOrder("the order is not signed")
        if not hmac.compare_digest(signature.encode(), self._mac(namespace, node, data).encode()):
            raise BadOrder("the order's signature does not verify (another key, node or content)")
        return json.dumps(data, sort_keys=True)

    def _mac(self, namespace: str, node: str, data: dict[str, Any]) -> str:
        message = json.dumps([_DOMAIN, namespace, node, json.dumps(data, sort_keys=True)])
        return hmac.new(self.secret, message.encode(), hashlib.sha256).hexdigest()


def unverified(order: str) -> str:
    """The placement text of an order whose signature is not checked (a worker run with `--insecure-orders`)."""
    data = _object(order)
    data.pop(SIGNATURE, None)
    return json.dumps(data, sort_keys=True)


def claimed_instance(order: str) -> str | None:
    """The instance id an order names, if any, to report a refused order as failed: read, never trusted."""
    try:
        instance_id = _object(order).get("instance_id")
    except BadOrder:
        return None
    return instance_id if isinstance(instance_id, str) and instance_id else None


def _object(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise BadOrder("the order is not JSON") from None
    if not isinstance(data, dict):
        raise BadOrder("the order is not a JSON object")
    return data
