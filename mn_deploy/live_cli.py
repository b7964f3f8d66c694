"""`mn-deploy controller run` and `mn-deploy dev up`: the live controller daemon, and a whole local stack.

Both run until Ctrl-C or SIGTERM (`dev up` also SIGHUP: a closed terminal) and then stop cleanly: the daemon
gives its lease up, `dev up` stops every process it started. Startup problems are one line and exit code 1; a
bad option of `dev up` is one line and exit code 2.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path

import click

from backends.live.controller.daemon import DaemonConfig, run_daemon
from backends.live.controller.lease import DEFAULT_TTL_MS
from backends.live.controller.server import DEFAULT_ADDRESS
from backends.live.devstack import DevStack, StackError, split_address
from backends.protocol import wire
from backends.redis.client import DEFAULT_URL
from mn_deploy.usage import OneLineUsage

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""What stops a command that runs until stopped, cleanly: Ctrl-C, a service manager, the terminal closing."""


def mn_deploy_command() -> list[str]:
    """How a child process runs this `mn-deploy`: with the interpreter running now, so it sees the same packages."""
    return [sys.executable, "-c", "from mn_deploy.cli import main; main(prog_name='mn-deploy')"]


def _stop_on_signals(signums: tuple[signal.Signals, ...] = STOP_SIGNALS) -> threading.Event:
    """An event set by these signals, so the command unwinds through its own cleanup."""
    stop = threading.Event()
    for signum in signums:
        signal.signal(signum, lambda *_: stop.set())
    return stop


def _grpc_address(ctx: click.Context, param: click.Parameter, address: str) -> str:
    """Refused before anything starts, as a usage error: the controller would only fail once the stack is up."""
    try:
        split_address(address)
    except StackError as error:
        raise click.BadParameter(str(error)) from None
    return address


@click.group()
def controller() -> None:
    """The controller daemon."""


@controller.command("run")
@click.option("--redis", "redis_url", envvar="MN_REDIS_URL", default=DEFAULT_URL, show_default=True)
@click.option("--grpc", "grpc_address", envvar="MN_GRPC_ADDRESS", default=DEFAULT_ADDRESS, show_default=True)
@click.option("--lease-ttl-ms", type=click.IntRange(min=3), default=DEFAULT_TTL_MS, show_default=True)
@click.option("--node-ttl-ms", type=click.IntRange(min=1), default=wire.DEFAULT_NODE_TTL_MS, show_default=True)
def run(redis_url: str, grpc_address: str, lease_ttl_ms: int, node_ttl_ms: int) -> None:
    """Stand by until this controller holds the lease, then drive every deployment and serve the gRPC API.

    A second controller on the same Redis waits and takes over within the lease TTL when the leader dies.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = DaemonConfig(redis_url, grpc_address, lease_ttl_ms=lease_ttl_ms, node_ttl_ms=node_ttl_ms)
    try:
        run_daemon(config, _stop_on_signals())
    except RuntimeError as error:  # grpc cannot bind the address
        raise click.ClickException(f"{grpc_address}: {error}") from None


@click.group(cls=OneLineUsage)
def dev() -> None:
    """A local stack for trying things out."""


@dev.command("up")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--grpc", "grpc_address", default=DEFAULT_ADDRESS, show_default=True, callback=_grpc_address)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where redis and the workers keep their files, kept after the stack stops (default: a new temporary "
    "directory, removed).",
)
def up(workers: int, grpc_address: str, workdir: Path | None) -> None:
    """Start redis-server on a free loopback port, one controller and N workers; stop them all on Ctrl-C.

    Redis keeps its records in an append-only file and is restarted with them if it dies.
    """
    stop = _stop_on_signals()
    stack = DevStack(mn_deploy_command(), workers=workers, grpc_address=grpc_address, workdir=workdir)
    try:
        stack.start()
        click.echo(f"redis: {stack.redis_url}")
        click.echo(f"grpc: {stack.grpc_address}")
        failed = stack.wait(stop, notify=lambda line: click.echo(line, err=True))
    except StackError as error:
        raise click.ClickException(str(error)) from None
    finally:
        stack.stop()
    if failed:
        raise click.ClickException(failed)
