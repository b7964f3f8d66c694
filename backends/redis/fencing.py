"""Fenced writes: each write of a controller term names the lease value the term holds, and Redis refuses it
once another controller holds the lease, so a leader that lost its lease and has not noticed yet writes nothing
(records, instance states, or orders to workers). The check is `lua/fence.lua`, prepended to each write script.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
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
    """Runs fenced scripts for one writer; `token` None means unfenced (tools and tests that own the data)."""

    def __init__(self, lease_key: str, token: str | None) -> None:
        self._lease_key = lease_key
        self.token = token

    def run(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return script([self._lease_key, *keys], [self.token or "", *args])
        except redis.ResponseError as exc:
            if self.token is not None and str(exc).startswith(_FENCED):
                raise FencedError(self.token) from None
            raise
