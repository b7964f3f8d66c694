"""The one plain form every command prints when piped: `Label: value` fields, tables under a `# Label:` header."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mn_deploy.plain import field_lines, table_lines

cells = st.text(max_size=40)


def test_a_table_is_a_header_line_naming_the_columns_then_a_line_per_row() -> None:
    lines = table_lines("Point", ["point", "runs"], [["0", "100"], ["1", "99"]])

    assert lines == ["# Point: point | runs", "Point: 0 | 100", "Point: 1 | 99"]


def test_a_table_without_rows_prints_nothing() -> None:
    assert table_lines("Point", ["point", "runs"], []) == []


def test_fields_are_label_value_lines() -> None:
    assert field_lines([("Seed", "1"), ("Ended at", "10.0 ms")]) == ["Seed: 1", "Ended at: 10.0 ms"]


@given(rows=st.lists(st.lists(cells, min_size=3, max_size=3), min_size=1, max_size=20))
def test_fuzz_every_row_is_one_line_under_one_header(rows: list[list[str]]) -> None:
    """Whatever a cell holds (a newline, an escape sequence, a lone surrogate, a `#`), a row stays one line that
    starts with its label, and only the header starts with `#`."""
    lines = table_lines("Row", ["a", "b", "c"], rows)

    assert len(lines) == len(rows) + 1
    assert len("\n".join(lines).splitlines()) == len(rows) + 1  # no line break of any kind inside a line
    assert [line.startswith("# ") for line in lines] == [True] + [False] * len(rows)
    assert all(line.startswith("Row: ") for line in lines[1:])
    assert all(line.encode("utf-8") for line in lines)  # printable: no lone surrogate is left to fail the encoding
