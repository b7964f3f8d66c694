"""What the command groups share about reading their arguments.

A usage error (a missing argument, a value out of range) is one line, `error: <message>` on stderr, and exit
code 2, like every other refused input, rather than click's usage block. `FiniteFloatRange` closes a gap in
click.FloatRange, which takes `nan` and `inf`: neither is a time or an interval.
"""

from __future__ import annotations

from typing import IO, Any

import click

from mn_deploy_core.limits import finite_number

EXIT_USAGE = 2


class UsageRefused(click.ClickException):
    """A usage error shown as one line."""

    exit_code = EXIT_USAGE

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class OneLineUsage(click.Group):
    """A group whose subcommands' usage errors are one line: their arguments are parsed in `invoke`, so this is
    where click's usage errors are caught."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as error:
            raise UsageRefused(error.format_message()) from None


class FiniteFloatRange(click.FloatRange):
    """click.FloatRange without NaN and the infinities."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not finite_number(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number
