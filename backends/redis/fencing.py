"""Fenced writes: each write of a controller term names the lease value the term holds, and Redis refuses it
once another controller holds the lease, so a leader that lost its lease and has not noticed yet writes nothing
(records, instance states, or orders to workers). The check is `lua/fence.lua`, prepended to each write script;
a transaction checks the lease once more, under WATCH, before it sends its writes (transaction.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import redis
from redis.client import Pipeline
from redis.commands.core import Script

_FENCED = "FENCED"


class FencedError(Exception):
    """The controller lease is no longer held with this fence: its owner must stop acting as leader.

    Not a DeploymentError: no user input causes it, and the writer's in-memory state is now stale.
    """

    def __init__(self, fence: str) -> None:
        super().__init__(f"the controller lease is no longer held by {fence}")
        self.fence = fence


class Fence:
    """Queues fenced scripts for one writer's transactions; `token` None means unfenced (tools and tests that own
    the data)."""

    def __init__(self, lease_key: str, token: str | None) -> None:
        self.lease_key = lease_key
        self.token = token

    def queue(self, pipe: Pipeline, script: Script, keys: Sequence[str], args: Sequence[Any]) -> None:
        script([self.lease_key, *keys], [self.token or "", *args], client=pipe)

    def check(self, client: redis.Redis | Pipeline) -> None:
        """FencedError unless the lease still holds this writer's value (an unfenced writer always passes)."""
        if self.token is not None and client.get(self.lease_key) != self.token:
            raise FencedError(self.token)

    def results(self, pipe: Pipeline) -> list[Any]:
        """Execute a pipeline of fenced scripts."""
        with self._translated():
            return list(pipe.execute())

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except redis.ResponseError as exc:
            if self.token is not None and str(exc).startswith(_FENCED):
                raise FencedError(self.token) from None
            raise
