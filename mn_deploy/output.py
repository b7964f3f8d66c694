"""How a deployment command prints: the API's JSON as it came, `Label: value` lines, or Rich.

Rich when stdout is a terminal; plain lines when it is not or with MN_CLI_OUTPUT=plain, so scripts and tests
read stable text (MN_CLI_OUTPUT=rich forces Rich). With `--json` each result is printed as the controller sent
it, one JSON document per line. Errors are one line on stderr in every mode.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import click
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from mn_deploy.deployment_view import Fields, Frame
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

    @classmethod
    def detect(cls, as_json: bool) -> Output:
        mode = os.environ.get("MN_CLI_OUTPUT", "").strip().lower()
        return cls(as_json, rich=mode == "rich" or (mode != "plain" and sys.stdout.isatty()))

    def error(self, message: str) -> None:
        click.echo(f"error: {message}", err=True)

    def show_fields(self, json_text: str, title: str, fields: Fields) -> None:
        if self.as_json:
            click.echo(json_text)
        elif self.rich:
            self._console.print(Panel(_grid(fields), title=title, title_align="left", expand=False))
        else:
            for label, value in fields:
                click.echo(f"{label}: {value}")

    def show_table(self, json_text: str, label: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        """Rows as a Rich table, or as `Label: a | b | c` lines (nothing when there are none)."""
        if self.as_json:
            click.echo(json_text)
        elif self.rich:
            table = Table(caption=None if rows else "none")
            for column in columns:  # folded rather than cut: an id is no use with an ellipsis in it
                table.add_column(column, overflow="fold")
            for row in rows:
                table.add_row(*(Text(cell) for cell in row))
            self._console.print(table)
        else:
            for row in rows:
                click.echo(f"{label}: {' | '.join(row)}")

    def show_lines(self, json_lines: Sequence[str], label: str, lines: Sequence[str]) -> None:
        """Items one per line: `Label: line` when plain, one JSON document each with `--json`."""
        if self.as_json:
            for text in json_lines:
                click.echo(text)
            return
        for line in lines:
            if self.rich:
                self._console.print(Text(line))
            else:
                click.echo(f"{label}: {line}")

    def show_outcome(self, json_text: str, line: str) -> None:
        if self.as_json:
            click.echo(json_text)
        elif self.rich:
            self._console.print(Text(line, style="bold"))
        else:
            click.echo(line)

    @contextmanager
    def watching(self) -> Iterator[Callable[[Frame], None]]:
        """A sink for frames: a live Rich view, a `Watch:` line per change when plain, nothing with `--json`."""
        if self.as_json:
            yield lambda frame: None
        elif self.rich:
            with Live(console=self._console, refresh_per_second=4) as live:
                yield lambda frame: live.update(_frame(frame))
            if not self._console.is_terminal:  # Live ends its last frame with a newline on terminals only
                self._console.line()
        else:
            last: tuple[object, ...] | None = None

            def show(frame: Frame) -> None:
                nonlocal last
                if frame.state != last:
                    last = frame.state
                    click.echo(f"Watch: {frame.line()}")

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
        roles.add_row(role.role, bar, role.text())
    status = Text.assemble((frame.status, _STATUS_STYLES.get(frame.status, "")), "  ", frame.description)
    parts: list[RenderableType] = [status, roles]
    if frame.deadline is not None:
        parts.append(Text(f"progress deadline: {frame.deadline}", style="dim"))
    return Panel(Group(*parts), title=frame.deployment_id, title_align="left", expand=False)
