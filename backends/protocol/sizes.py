"""How big what crosses the gRPC door may be. The server and our CLI set the same message limits, and a bundle or
manifest over its limit is refused at the door, in one line naming the limit, before anything is applied.
Replies are shaped to stay far below theirs: each carries a manifest once, a bounded version summary, a page of a
list (backends/live/controller/results.py)."""

from __future__ import annotations

from collections.abc import Mapping

from mn_deploy_core.errors import DeploymentError

MIB = 1024 * 1024
MAX_BUNDLE_BYTES = 64 * MIB
"""A deploy's payload files, all together."""
MAX_MANIFEST_BYTES = 1 * MIB
"""A manifest's JSON text (UTF-8). The deployment record keeps it, and every reply about the deployment carries it."""
MAX_REQUEST_BYTES = MAX_BUNDLE_BYTES + 16 * MIB
"""A request message: a full bundle, its manifest and the rest of the request, with room to spare."""
MAX_REPLY_BYTES = 4 * MIB
"""A reply message (gRPC's own default, set explicitly on both sides)."""


class TooLargeError(DeploymentError):
    """A manifest or bundle over its limit (answered INVALID_ARGUMENT; the CLI exits 2)."""


def check_sizes(manifest_json: str, payloads: Mapping[str, bytes]) -> None:
    """TooLargeError naming the limit when the manifest text or the payloads together are over theirs."""
    check_manifest_size(manifest_json)
    check_bundle_size(sum(len(data) for data in payloads.values()))


def check_manifest_size(manifest_json: str) -> None:
    size = len(manifest_json.encode("utf-8", "surrogatepass"))
    if size > MAX_MANIFEST_BYTES:
        raise TooLargeError(f"the manifest is {size:,} bytes; at most {_limit(MAX_MANIFEST_BYTES)} are accepted")


def check_bundle_size(total: int) -> None:
    """TooLargeError when payloads of `total` bytes are over the limit (the CLI asks before reading them)."""
    if total > MAX_BUNDLE_BYTES:
        raise TooLargeError(f"the payloads are {total:,} bytes in all; at most {_limit(MAX_BUNDLE_BYTES)} are accepted")


def server_options() -> list[tuple[str, int]]:
    return [("grpc.max_receive_message_length", MAX_REQUEST_BYTES), ("grpc.max_send_message_length", MAX_REPLY_BYTES)]


def client_options() -> list[tuple[str, int]]:
    return [("grpc.max_send_message_length", MAX_REQUEST_BYTES), ("grpc.max_receive_message_length", MAX_REPLY_BYTES)]


def _limit(count: int) -> str:
    return f"{count:,} bytes ({count // MIB} MiB)"
