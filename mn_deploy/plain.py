"""Plain output: what every command prints when stdout is not a terminal (or with MN_CLI_OUTPUT=plain).

One convention for every command, so a script or a reader learns it once: a field is a `Label: value` line; a
table is its rows as `Label: a | b | c` lines under one header line naming the columns, `# Label: col | col | col`.
The `#` keeps the header out of `grep '^Label: '` and marks it as a comment for awk or pandas (`comment="#"`);
an empty table prints nothing. Every value goes through `printable`, so a line is always one line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

# Control characters (a newline would break a line, an escape sequence would drive the terminal), lone surrogates
# (no encoding can write one: printing it raises) and the Unicode line and paragraph separators.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029]")

HEADER = "# "
"""What starts a table's header line."""


def printable(text: str) -> str:
    """`text` with what a terminal line cannot show as it is written as a Python escape (`\\n`, `\\ud800`)."""
    return _UNPRINTABLE.sub(lambda found: found.group().encode("unicode_escape").decode("ascii"), text)


def field_lines(fields: Iterable[tuple[str, str]]) -> list[str]:
    """`Label: value`, a line each."""
    return [f"{label}: {printable(value)}" for label, value in fields]


def table_lines(label: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """The header line `# Label: col | col`, then a `Label: a | b` line per row; nothing without rows."""
    if not rows:
        return []
    header = f"{HEADER}{label}: {' | '.join(columns)}"
    return [header, *(f"{label}: {' | '.join(printable(cell) for cell in row)}" for row in rows)]
