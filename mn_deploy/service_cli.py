"""`mn-deploy service list` and `mn-deploy service resolve`: what service discovery holds, read from Redis.

The commands read the registry the controller writes and the workers renew, straight from the controller's
Redis (`--redis`, else MN_REDIS_URL; the namespace is MN_REDIS_NAMESPACE's, as for the daemons), so they work
without a controller running. Usage errors are one line and exit code 2; a Redis that cannot be reached is
one line and exit code 3.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import click

from backends.redis.registry import Entry, RedisRegistry, discoverable, entry_json
from mn_deploy.output import Output
from mn_deploy.redis_reader import EXIT_NONE_FOUND, reading, redis_option
from mn_deploy.usage import OneLineUsage

COLUMNS = ("name", "instance", "key", "version", "role", "passing", "node", "address")


@click.group(name="service", cls=OneLineUsage, no_args_is_help=True)
def service() -> None:
    """Look services up in discovery, as the controller and its workers keep it in Redis.

    \b
    Redis:   --redis, else MN_REDIS_URL, else redis://127.0.0.1:6379/0;
             keys under MN_REDIS_NAMESPACE (default mirror_neuron).
    Output:  Rich on a terminal; `Service: a | b | ...` lines when piped or
             with MN_CLI_OUTPUT=plain; --json prints one JSON array.

    \b
    Exit codes:
      0    done
      1    resolve: no instance is visible under the name
      2    bad usage
      3    Redis could not be reached
    """


def _command(name: str) -> Callable[[Callable[..., None]], click.Command]:
    """A command that gets a registry and a printer, with `--redis` and `--json`; Redis errors are one line."""

    def register(function: Callable[..., None]) -> click.Command:
        @functools.wraps(function)
        def run(redis_url: str, as_json: bool, **arguments: Any) -> None:
            out = Output.detect(as_json)
            with reading(out, redis_url) as client:
                function(RedisRegistry(client), out, **arguments)

        run = click.option("--json", "as_json", is_flag=True, help="Print the entries as one JSON array.")(run)
        run = redis_option(run)
        return service.command(name)(run)

    return register


@_command("list")
@click.argument("key", required=False)
@click.option("--all", "show_all", is_flag=True, help="Also canaries, blue-green candidates and non-passing ones.")
def list_services(registry: RedisRegistry, out: Output, key: str | None, show_all: bool) -> None:
    """The services of deployment KEY, or of every key: by default only what a normal lookup returns (primary,
    passing instances)."""
    entries = registry.all_entries(key)
    if not show_all:
        entries = discoverable(entries)
    _show(out, entries)
    if not entries and not out.as_json:
        click.echo("no services", err=True)


@_command("resolve")
@click.argument("name")
def resolve(registry: RedisRegistry, out: Output, name: str) -> None:
    """The instances a normal lookup of service NAME returns: primary and passing. Exit 1 when there are none."""
    entries = discoverable(registry.entries(name))
    _show(out, entries)
    if not entries:
        if not out.as_json:
            out.error(f"no primary, passing instance of service {name!r}")
        sys.exit(EXIT_NONE_FOUND)


def _show(out: Output, entries: Sequence[Entry]) -> None:
    document = json.dumps([entry_json(e) for e in entries])
    out.show_table(document, "Service", COLUMNS, [_row(e) for e in entries])


def _row(entry: Mapping[str, str]) -> list[str]:
    host, port = entry.get("host", ""), entry.get("port", "")
    address = f"{host}:{port}" if host and port else host
    cells = [
        entry["name"],
        entry["instance_id"],
        entry.get("deployment_key", ""),
        entry.get("deployment_version", ""),
        entry.get("deployment_role", ""),
        "yes" if entry.get("passing") == "1" else "no",
        entry.get("node", ""),
        address,
    ]
    return [cell or "-" for cell in cells]
