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
import redis

from backends.redis.client import DEFAULT_URL, connect
from backends.redis.registry import Entry, RedisRegistry, service_of
from mn_deploy.output import Output
from mn_deploy.usage import OneLineUsage
from mn_deploy_core.discovery import visible

EXIT_NONE_FOUND = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
COLUMNS = ("Service", "Instance", "Key", "Version", "Role", "Passing", "Node", "Address")


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
            try:
                client = connect(redis_url)
            except ValueError as error:  # not a Redis URL
                out.exit(f"--redis {redis_url}: {error}", EXIT_USAGE)
            try:
                function(RedisRegistry(client), out, **arguments)
            except redis.RedisError as error:
                out.exit(f"Redis at {redis_url} could not answer: {error}", EXIT_UNREACHABLE)
            finally:
                client.close()

        run = click.option("--json", "as_json", is_flag=True, help="Print the entries as one JSON array.")(run)
        run = click.option(
            "--redis",
            "redis_url",
            envvar="MN_REDIS_URL",
            default=DEFAULT_URL,
            show_default=True,
            help="The controller's Redis (env MN_REDIS_URL).",
        )(run)
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
        entries = [e for e in entries if visible(service_of(e))]
    _show(out, entries)
    if not entries and not out.as_json:
        click.echo("no services", err=True)


@_command("resolve")
@click.argument("name")
def resolve(registry: RedisRegistry, out: Output, name: str) -> None:
    """The instances a normal lookup of service NAME returns: primary and passing. Exit 1 when there are none."""
    entries = [e for e in registry.entries(name) if visible(service_of(e))]
    _show(out, entries)
    if not entries:
        if not out.as_json:
            out.error(f"no primary, passing instance of service {name!r}")
        sys.exit(EXIT_NONE_FOUND)


def _show(out: Output, entries: Sequence[Entry]) -> None:
    document = json.dumps([entry_json(e) for e in entries])
    out.show_table(document, "Service", COLUMNS, [_row(e) for e in entries])


def entry_json(entry: Mapping[str, str]) -> dict[str, Any]:
    """An entry for `--json`: `passing` a boolean, `port` a number, and null for what the worker has not
    written (yet)."""
    port = entry.get("port", "")
    return {
        "name": entry["name"],
        "instance_id": entry["instance_id"],
        "agent_id": entry.get("agent_id", ""),
        "job_id": entry.get("job_id", ""),
        "deployment_id": entry.get("deployment_id", ""),
        "deployment_key": entry.get("deployment_key", ""),
        "deployment_version": entry.get("deployment_version", ""),
        "deployment_role": entry.get("deployment_role", ""),
        "passing": entry.get("passing") == "1",
        "node": entry.get("node") or None,
        "host": entry.get("host") or None,
        "port": int(port) if port.isdigit() else None,
    }


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
