"""Sweeps on a Dask cluster: `distributed` is an optional extra (`pip install 'mn-deploy[dask]'`).

The cluster's workers need this package installed as well; its `Client.get_executor()` is an ordinary
`concurrent.futures.Executor`, so a sweep runs there exactly as on a local process pool, with the same rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Executor
from contextlib import contextmanager


@contextmanager
def dask_executor(address: str) -> Iterator[tuple[Executor, int]]:
    """An executor on the cluster whose scheduler listens at `address`, and its thread count (how many runs
    it executes at once). Tasks are impure: Dask must not merge two runs that happen to look alike."""
    try:
        from distributed import Client
    except ImportError:
        raise ImportError("--dask needs the dask extra: pip install 'mn-deploy[dask]'") from None
    with Client(address) as client:
        yield client.get_executor(pure=False), max(1, sum(client.nthreads().values()))
