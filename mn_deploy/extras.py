"""Command groups that need an optional extra, attached by name and summary and imported only when used.

A base install (`pip install mn-deploy`) is the simulator and this CLI; the live commands need the `live` extra
(redis, grpcio, protobuf), which their modules import at the top. So `mn-deploy` names those groups here with
their one-line summary: `mn-deploy --help` and `mn-deploy sim ...` never import them, and without the extra a
live command (or its `--help`) answers with the summary and the one line that says what to install.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import click

from mn_deploy.usage import UsageRefused

EXTRA_MODULES = {"live": ("redis", "grpc", "google.protobuf")}  # what each extra brings that our modules import


@dataclass(frozen=True)
class Deferred:
    """A command group in `module:attribute`, the commands `attached` to it the same way, and its summary (the
    first line of its help, checked by a test) for `--help` listings that must not import it."""

    target: str
    summary: str
    extra: str
    attached: tuple[str, ...] = ()

    def load(self) -> click.Command:
        command = _attribute(self.target)
        if isinstance(command, click.Group):
            for target in self.attached:
                command.add_command(_attribute(target))
        return command

    def install_hint(self) -> str:
        return f"pip install 'mn-deploy[{self.extra}]'"


def _attribute(target: str) -> click.Command:
    module, _, name = target.partition(":")
    command = getattr(importlib.import_module(module), name)
    assert isinstance(command, click.Command), target
    return command


def missing_from(extra: str, error: ModuleNotFoundError) -> bool:
    """Whether `error` is one of `extra`'s packages missing (`google.protobuf` may be missing as `google`)."""
    name = error.name or ""
    return any(name == module or module.startswith(f"{name}.") for module in EXTRA_MODULES[extra])


def needs_extra(name: str, deferred: Deferred) -> click.Command:
    """What stands in for a command whose extra is not installed: its help says what to install; running it
    refuses in one line, whatever its arguments."""

    def refuse() -> None:
        raise UsageRefused(f"this command needs the {deferred.extra} extra: {deferred.install_hint()}")

    return click.Command(
        name,
        callback=refuse,
        help=f"{deferred.summary}\n\nNeeds the `{deferred.extra}` extra: {deferred.install_hint()}",
        short_help=deferred.summary,
        options_metavar="[ARGS]...",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )


class ExtrasGroup(click.Group):
    """A group with eagerly attached commands and `deferred` ones, imported on first use."""

    def __init__(self, *args: Any, deferred: dict[str, Deferred] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deferred = dict(deferred or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.deferred})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in self.deferred:
            return super().get_command(ctx, cmd_name)
        deferred = self.deferred[cmd_name]
        try:
            command = deferred.load()
        except ModuleNotFoundError as error:
            if not missing_from(deferred.extra, error):
                raise
            return needs_extra(cmd_name, deferred)
        self.add_command(command, cmd_name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's listing, with the summaries of commands not imported yet: `--help` imports nothing."""
        rows = []
        limit = formatter.width - 6 - max((len(name) for name in self.list_commands(ctx)), default=0)
        for name in self.list_commands(ctx):
            if name in self.deferred and name not in self.commands:
                listed = click.Command(name, help=self.deferred[name].summary)
                rows.append((name, listed.get_short_help_str(limit)))
            elif (command := self.get_command(ctx, name)) is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
