"""How a deployment command prints: the API's JSON as it came, plain lines (mn_deploy/plain.py), or Rich.

Rich when stdout is a terminal; plain lines when it is not or with MN_CLI_OUTPUT=plain, so scripts and tests
read stable text (MN_CLI_OUTPUT=rich forces Rich). With `--json` each result is printed as the controller sent
it, one JSON document per line. Errors and warnings are one line on stderr in every mode.

Text from a record is shown through `printable`: a key or a reason may hold any character JSON can carry.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import NoReturn

import click
from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from mn_deploy.deployment_view import Fields, Frame
from mn_deploy.plain import field_lines, printable, table_lines
from mn_deploy_core.status import Status

_STATUS_STYLES: dict[str, str] = {
    Status.RUNNING: "cyan",
    Status.AWAITING_PROMOTION: "yellow",
    Status.PAUSED: "yellow",
    Status.SUCCESSFUL: "green",
    Status.VERSION_RECORDED: "green",
    Status.FAILED: "red",
    Status.CANCELLED: "red",
}


class Output:
    """One command's printer; every `show_*` takes the JSON to print instead when `--json` was given."""

    def __init__(self, as_json: bool, rich: bool) -> None:
        self.as_json = as_json
        self.rich = rich and not as_json
        self._console = Console(highlight=False)
        self._live = False  # a live view is being redrawn on the terminal

    @classmethod
    def detect(cls, as_json: bool) -> Output:
        mode = os.environ.get("MN_CLI_OUTPUT", "").strip().lower()
        return cls(as_json, rich=mode == "rich" or (mode != "plain" and sys.stdout.isatty()))

    def error(self, message: str) -> None:
        click.echo(f"error: {printable(message)}", err=True)

    def exit(self, message: str, code: int) -> NoReturn:
        """The one line a failed command prints, and its exit code."""
        self.error(message)
        raise click.exceptions.Exit(code)

    def warning(self, message: str) -> None:
        """About the command, not its result: on stderr, so stdout stays the result (and `--json` parseable).
        Under a live view it is printed above the view instead, which would otherwise be drawn over it."""
        line = f"warning: {printable(message)}"
        if self._live:
            self._console.print(Text(line))
        else:
            click.echo(line, err=True)

    def show_fields(self, json_text: str, title: str, fields: Fields) -> None:
        shown = [(label, printable(value)) for label, value in fields]
        if self.as_json:
            click.echo(json_text)
        elif self.rich:
            self._console.print(Panel(_grid(shown), title=title, title_align="left", expand=False))
        else:
            for line in field_lines(shown):
                click.echo(line)

    def show_table(
        self,
        json_text: str,
        label: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[str]],
        *,
        fold: Collection[str] | None = None,
    ) -> None:
        """Rows as a Rich table, or as plain lines under a header line (nothing when there are none). With `fold`, a
        table of many short columns: drawn without borders, only the `fold` columns wrap, so it fits 80 columns."""
        shown = [[printable(cell) for cell in row] for row in rows]
        if self.as_json:
            click.echo(json_text)
        elif self.rich:
            bordered = fold is None
            table = Table(
                caption=None if rows else "none",
                box=box.HEAVY_HEAD if bordered else box.SIMPLE_HEAD,
                show_edge=bordered,
                pad_edge=bordered,
                collapse_padding=not bordered,
            )
            for column in columns:  # folded rather than cut: an id is no use with an ellipsis in it
                table.add_column(column, overflow="fold", no_wrap=fold is not None and column not in fold)
            for row in shown:
                table.add_row(*(Text(cell) for cell in row))
            self._console.print(table)
        else:
            for line in table_lines(label, columns, shown):
                click.echo(line)

    def show_lines(self, json_lines: Sequence[str], label: str, lines: Sequence[str]) -> None:
        """Items one per line: `Label: line` when plain, one JSON document each with `--json`."""
        if self.as_json:
            for text in json_lines:
                click.echo(text)
            return
        for line in map(printable, lines):
            if self.rich:
                self._console.print(Text(line))
            else:
                click.echo(f"{label}: {line}")

    def show_outcome(self, json_text: str, line: str) -> None:
        if self.as_json:
            click.echo(json_text)
        elif self.rich:
            self._console.print(Text(printable(line), style="bold"))
        else:
            click.echo(printable(line))

    @contextmanager
    def watching(self) -> Iterator[Callable[[Frame], None]]:
        """A sink for frames: a live Rich view, a `Watch:` line per change when plain, nothing with `--json`."""
        if self.as_json:
            yield lambda frame: None
        elif self.rich:
            with Live(console=self._console, refresh_per_second=4) as live:
                self._live = self._console.is_terminal
                try:
                    yield lambda frame: live.update(_frame(frame))
                finally:
                    self._live = False
            if not self._console.is_terminal:  # Live ends its last frame with a newline on terminals only
                self._console.line()
        else:
            last: tuple[object, ...] | None = None

            def show(frame: Frame) -> None:
                nonlocal last
                if frame.state != last:
                    last = frame.state
                    click.echo(f"Watch: {printable(frame.line())}")

            yield show


def _grid(fields: Fields) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for label, value in fields:
        style = _STATUS_STYLES.get(value, "") if label == "Status" else ""
        grid.add_row(label, Text(value, style=style))
    return grid


def _frame(frame: Frame) -> RenderableType:
    roles = Table.grid(padding=(0, 2))
    for role in frame.roles:
        bar = ProgressBar(total=max(role.desired, 1), completed=role.healthy, width=30)
        roles.add_row(Text(printable(role.role)), bar, role.text())
    style = _STATUS_STYLES.get(frame.status, "")
    status = Text.assemble((printable(frame.status), style), "  ", printable(frame.description))
    parts: list[RenderableType] = [status, roles]
    if frame.deadline is not None:
        parts.append(Text(f"progress deadline: {frame.deadline}", style="dim"))
    return Panel(Group(*parts), title=Text(printable(frame.deployment_id)), title_align="left", expand=False)
