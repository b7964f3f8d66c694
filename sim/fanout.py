"""Calls spread over any `concurrent.futures.Executor` (a process pool, a Dask cluster), a bounded number
at a time.

Submitting only a few more calls than there are workers keeps a large sweep's arguments out of memory and
leaves little to cancel when it is interrupted.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from itertools import islice
from typing import Any, Generic, TypeVar

R = TypeVar("R")
T = TypeVar("T")


def completions(
    executor: Executor, fn: Callable[..., R], calls: Iterable[tuple[Any, ...]], in_flight: int
) -> Generator[tuple[int, R], None, None]:
    """(index, result) of each call of `fn(*args)` as it completes, with at most `in_flight` submitted and
    unfinished at once. Closing the iterator early cancels the calls not yet started."""
    todo = enumerate(calls)
    pending: dict[Future[R], int] = {}

    def submit(batch: Iterable[tuple[int, tuple[Any, ...]]]) -> None:
        for index, args in batch:
            pending[executor.submit(fn, *args)] = index

    try:
        submit(islice(todo, max(1, in_flight)))
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in sorted(finished, key=pending.__getitem__):
                index = pending.pop(future)
                submit(islice(todo, 1))
                yield index, future.result()
    finally:
        for future in pending:
            future.cancel()


class InOrder(Generic[T]):
    """Passes items on in index order, each as soon as every earlier one has arrived; `drain` passes on the
    rest in index order, gaps and all (what an interrupted run has finished)."""

    def __init__(self, sink: Callable[[T], None]) -> None:
        self._sink = sink
        self._waiting: dict[int, T] = {}
        self._next = 0

    def add(self, index: int, item: T) -> None:
        self._waiting[index] = item
        while self._next in self._waiting:
            self._sink(self._waiting.pop(self._next))
            self._next += 1

    def drain(self) -> None:
        for index in sorted(self._waiting):
            self._sink(self._waiting.pop(index))
