"""One decision, one transaction: everything a controller call writes reaches Redis whole or not at all.

The store, the runtime (orders to workers) and the registry of one controller share a `Transaction`; their writes
queue in it and the store's `commit` sends them in one MULTI/EXEC. Before it, under WATCH, the fence is checked
(this term still holds the controller lease) and so is each precondition a write named (a record still at the
revision it was read at); a change to a watched key between the check and EXEC makes Redis drop the whole
transaction, and it is checked again. A crash anywhere leaves all of a decision or none of it.

A writer used on its own (a tool, a test) makes its own transaction, with `autocommit` when it has no commit
step of its own (each write is then sent at once).

For a controller, a commit that fails (fenced, a precondition broken, Redis gone mid-call) leaves its memory
ahead of Redis. Its transaction (`breaks=True`) then stays `broken` and refuses further writes: the controller
must drop that memory and take over again from what Redis holds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.client import Pipeline
from redis.commands.core import Script

from backends.redis.fencing import Fence

Write = Callable[[Pipeline], None]
"""Queues one command on the transaction's pipeline."""


class BrokenTransactionError(Exception):
    """An earlier commit of this transaction failed: its owner's memory no longer matches Redis."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"an earlier commit failed ({cause}); take over again from what Redis holds")
        self.cause = cause


@dataclass(frozen=True, slots=True)
class Precondition:
    """Something a write relies on, read under WATCH just before EXEC: `refusal` returns the error to raise
    when it no longer holds (None when it does)."""

    watch: tuple[str, ...]
    refusal: Callable[[Pipeline], Exception | None]


class Transaction:
    def __init__(self, client: redis.Redis, fence: Fence, *, autocommit: bool = False, breaks: bool = False) -> None:
        self._client = client
        self._fence = fence
        self._autocommit = autocommit
        self._breaks = breaks
        self._writes: list[Write] = []
        self._preconditions: list[Precondition] = []
        self._ended: list[Callable[[], None]] = []
        self.broken: BaseException | None = None

    @property
    def fence(self) -> Fence:
        return self._fence

    @property
    def pending(self) -> bool:
        return bool(self._writes)

    def script(self, script: Script, keys: Sequence[str], args: Sequence[Any], *, fenced: bool = True) -> None:
        """Queue a script call (fenced: behind the fence check, which EXEC repeats inside)."""
        if fenced:
            self.write(lambda pipe: self._fence.queue(pipe, script, keys, args))
        else:
            self.write(lambda pipe: script(keys, args, client=pipe))

    def write(self, write: Write, precondition: Precondition | None = None) -> None:
        if self.broken is not None:
            raise BrokenTransactionError(self.broken)
        self._writes.append(write)
        if precondition is not None:
            self._preconditions.append(precondition)
        if self._autocommit:
            self.commit()

    def when_ended(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the queued writes are committed or dropped (a writer forgets what it planned)."""
        self._ended.append(callback)

    def commit(self) -> list[Any]:
        """Send every queued write in one MULTI/EXEC; their replies, in order. Raises FencedError, the first
        broken precondition's error, or Redis's: nothing queued is sent, and a transaction that `breaks` is now
        broken."""
        if self.broken is not None:
            raise BrokenTransactionError(self.broken)
        writes, preconditions = self._writes, self._preconditions
        self._writes, self._preconditions = [], []
        try:
            return self._send(writes, preconditions) if writes else []
        except BaseException as error:
            if self._breaks:
                self.broken = error
            raise
        finally:
            ended, self._ended = self._ended, []
            for callback in ended:
                callback()

    def _send(self, writes: list[Write], preconditions: list[Precondition]) -> list[Any]:
        watched = [key for p in preconditions for key in p.watch]
        if self._fence.token is not None:
            watched.append(self._fence.lease_key)
        with self._client.pipeline(transaction=True) as pipe:
            while True:
                if watched:
                    pipe.watch(*watched)
                self._fence.check(pipe)
                for precondition in preconditions:
                    refusal = precondition.refusal(pipe)
                    if refusal is not None:
                        raise refusal
                pipe.multi()
                for write in writes:
                    write(pipe)
                try:
                    return self._fence.results(pipe)
                except redis.WatchError:
                    continue  # a watched key changed: check everything again on what is there now
