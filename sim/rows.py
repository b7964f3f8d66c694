"""The sweep table: one row per run, written to CSV as each row is ready so an interrupted sweep keeps them.

Columns: `point`, `run`, `seed`, one per grid axis (named by its dotted path), `outcome`, the numeric
measures kept, then `error` and `replay`, filled only for a run that raised. A missing value is an empty
cell; grid values other than text are written as JSON (`true`, `{"const": 5}`), numbers as Python writes
them, so the same rows give the same bytes.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

Row = dict[str, Any]
ERROR = "error"
"""The outcome of a run that raised."""
REPLAY = "replay"


def header(axes: Sequence[str], metrics: Sequence[str]) -> list[str]:
    return ["point", "run", "seed", *axes, "outcome", *metrics, ERROR, REPLAY]


def cell(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


class RowWriter:
    """A CSV file of rows with a header; every row is flushed as it is written."""

    def __init__(self, path: Path, header: Sequence[str]) -> None:
        self._header = list(header)
        self._file: IO[str] = path.open("w", encoding="utf-8", newline="")
        self._csv = csv.writer(self._file)
        self._csv.writerow(self._header)
        self._file.flush()

    def write(self, row: Row) -> None:
        self._csv.writerow([cell(row[name]) for name in self._header])
        self._file.flush()

    def __enter__(self) -> RowWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._file.close()
