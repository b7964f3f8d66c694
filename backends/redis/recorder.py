"""The live controller's `Recorder` (docs/traces.md): each deployment's inputs in a Redis stream of its own
(`Keys.inputs`), kept and removed with the deployment's record, and read back for `deployment export`.

An input is queued in the term's transaction before the decision it leads to, so the commit that stores the
decision sends it first, in the same MULTI/EXEC behind the same fence (a deposed controller records nothing): an
input is stored with its decision or not at all, for no round trip of its own. Most facts decide nothing; what they
leave queued the driver stores before it acknowledges them, and after every gRPC call (`Driver(settle=...)`). A
controller that crashes after storing a fact and before acknowledging it is given it again by the next term, which
records it again, so a fact may appear twice in a trace.

Each stream keeps its newest ~`INPUTS_KEPT` entries (XADD MAXLEN ~); `RecordedInputs.cut` says when older ones were
trimmed, and the trace of such a deployment is not complete.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import redis

from backends.redis import scripts
from backends.redis.keys import Keys
from backends.redis.transaction import Transaction
from mn_deploy_core.trace import Input

log = logging.getLogger(__name__)

INPUTS_KEPT = 50_000
"""Entries each deployment's inputs stream keeps: a rollout of 1,000 agents takes in about 10,000 facts; a service
reconciled for weeks may take more, and its oldest inputs go first."""


class RedisRecorder:
    """Records a controller term's inputs through the term's transaction (`Keys.inputs`)."""

    def __init__(self, client: redis.Redis, keys: Keys, transaction: Transaction) -> None:
        self._keys = keys
        self._transaction = transaction
        self._append = scripts.bind_fenced(client, "record_input")

    def record(self, deployment_id: str, now: float, entry: Mapping[str, Any]) -> None:
        """Queued with the decision to come (see the module's docstring)."""
        args = [str(INPUTS_KEPT), repr(float(now)), json.dumps(entry, ensure_ascii=False, separators=(",", ":"))]
        self._transaction.script(self._append, [self._keys.inputs(deployment_id)], args)


@dataclass(frozen=True, slots=True)
class RecordedInputs:
    """A deployment's inputs as kept; `cut`: older ones were trimmed by the cap."""

    inputs: list[Input]
    cut: bool


def read_inputs(client: redis.Redis, keys: Keys, deployment_id: str) -> RecordedInputs:
    """The deployment's stream in order; an entry that does not decode is logged and skipped."""
    stream = keys.inputs(deployment_id)
    entries = cast(list[tuple[str, dict[str, str]]], client.xrange(stream))
    inputs = []
    for entry_id, fields in entries:
        try:
            entry = json.loads(fields["entry"])
            t_ms = float(fields["t_ms"])
            if not isinstance(entry, dict):
                raise ValueError("not an object")
        except (KeyError, ValueError) as exc:
            log.warning("skipping input %s of %s: %r", entry_id, deployment_id, exc)
            continue
        inputs.append(Input(deployment_id, t_ms, entry))
    return RecordedInputs(inputs, _trimmed(client, stream, len(entries)))


def _trimmed(client: redis.Redis, stream: str, kept: int) -> bool:
    """Whether the stream ever held more entries than it keeps (Redis 7's `entries-added`)."""
    if not kept:
        return False
    info = client.xinfo_stream(stream)
    return int(info.get("entries-added", kept)) > kept
