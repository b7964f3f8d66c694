"""The controller leader lease: one controller acts at a time, a standby takes over within the TTL.

The lease is `<ns>:controller:lease` = `<owner>:<token>` with a PX TTL; the token comes from the counter
`<ns>:controller:fence`, so every term has its own value. That value is the fence a leader's RedisStore
checks in every write, so a leader that lost the lease (paused, partitioned) cannot overwrite its successor.

The leader renews every third of the TTL and trusts its lease only until two thirds of the TTL after the last
successful renewal was sent: the last third is the margin for an action already under way.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable

import redis

from backends.redis import scripts
from backends.redis.client import require_decoded
from backends.redis.keys import Keys, namespace_from_env

DEFAULT_TTL_MS = 3000


def default_owner() -> str:
    """Host and process: enough to tell in `redis-cli GET` which controller leads."""
    return f"{socket.gethostname()}/{os.getpid()}"


class Lease:
    """One controller's view of the lease; `acquire` blocks as a standby, the leader calls `renew`."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        owner: str | None = None,
        namespace: str | None = None,
        ttl_ms: int = DEFAULT_TTL_MS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_ms < 3:
            raise ValueError("ttl_ms must be at least 3")
        require_decoded(client)
        keys = Keys(namespace or namespace_from_env())
        self._lease_key, self._fence_key = keys.controller_lease, keys.controller_fence
        self._owner = owner or default_owner()
        self._ttl_ms = ttl_ms
        self._clock = clock
        self._acquire = scripts.bind(client, "lease_acquire")
        self._renew = scripts.bind(client, "lease_renew")
        self._release = scripts.bind(client, "lease_release")
        self._value: str | None = None
        self._trusted_until = 0.0

    @property
    def renew_interval_s(self) -> float:
        return self._ttl_ms / 3000

    def acquire(self, stop: threading.Event) -> str | None:
        """Wait as a standby until the lease is ours (its value) or `stop` is set (None).

        Between attempts it sleeps for what is left of the holder's TTL, at most a renewal interval (so a lease
        given up cleanly is noticed soon): a few Redis calls per TTL, never a hot loop.
        """
        while not stop.is_set():
            sent = self._clock()
            taken, found = self._acquire([self._lease_key, self._fence_key], [self._owner, self._ttl_ms])
            if taken:
                self._value, self._trusted_until = str(found), sent + 2 * self.renew_interval_s
                return self._value
            remaining_s = int(found) / 1000 if int(found) > 0 else self.renew_interval_s
            stop.wait(min(remaining_s, self.renew_interval_s))
        return None

    def renew(self) -> bool:
        """Extend this term's lease; False (and no longer held) when it expired or another term took it."""
        if self._value is None:
            return False
        sent = self._clock()
        if self._renew([self._lease_key], [self._value, self._ttl_ms]):
            self._trusted_until = sent + 2 * self.renew_interval_s
            return True
        self._value = None
        return False

    def held(self) -> bool:
        """Whether this term may still act: the lease is ours and was renewed recently enough."""
        return self._value is not None and self._clock() < self._trusted_until

    def release(self) -> None:
        """Give the lease up (only if it is still ours), so a standby takes over without waiting for the TTL."""
        if self._value is not None:
            self._release([self._lease_key], [self._value])
            self._value = None
