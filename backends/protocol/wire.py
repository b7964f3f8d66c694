"""What the controller and its workers exchange through Redis, and how it is written there.

Orders go to a node's assignments stream (`op` = place, stop or resync); facts come back on one facts stream,
one entry per fact. Both sides read and write them only through these functions, so the format lives here.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import redis

from mn_deploy_core.ports import Fact, FactKind, Placement, RestartPolicy, Role

DEFAULT_NODE_TTL_MS = 5000
# Streams are trimmed to about this many entries; the desired hash, not the stream, is the truth a worker
# reconciles with, so a worker that fell that far behind still converges.
ASSIGNMENTS_MAXLEN = 10_000

PLACE, STOP, RESYNC = "place", "stop", "resync"


def encode_placement(placement: Placement) -> str:
    return json.dumps(dataclasses.asdict(placement), sort_keys=True)


def decode_placement(text: str) -> Placement:
    data: dict[str, Any] = json.loads(text)
    return Placement(
        **{
            **data,
            "role": Role(data["role"]),
            "checks": tuple(data["checks"]),
            "restart": RestartPolicy(**data["restart"]),
        }
    )


def fact_fields(fact: Fact, node: str) -> dict[str, str]:
    """A facts stream entry; `node` says which worker reported it, for whoever reads the stream by hand."""
    return {"instance_id": fact.instance_id, "kind": str(fact.kind), "check": fact.check, "node": node}


def decode_fact(fields: Mapping[str, str]) -> Fact:
    """Raises KeyError or ValueError for an entry no worker of ours wrote."""
    return Fact(fields["instance_id"], FactKind(fields["kind"]), fields.get("check", ""))


def max_block_ms(client: redis.Redis) -> int | None:
    """The longest BLOCK a read on `client` may ask for: half its socket timeout, so the server answers first
    (redis-py 8 would otherwise time out and retry a blocked read); None when the client has no timeout."""
    timeout = client.connection_pool.connection_kwargs.get("socket_timeout")
    return None if timeout is None else max(1, int(timeout * 500))
