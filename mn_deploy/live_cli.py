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

from backends.live.controller.auth import TokenError, controller_tokens
from backends.live.controller.daemon import DaemonConfig, run_daemon
from backends.live.controller.lease import DEFAULT_TTL_MS
from backends.live.controller.server import DEFAULT_ADDRESS, Door, ServerTls, TlsError, is_loopback
from backends.live.devstack import DevStack, StackError, split_address
from backends.protocol import wire
from backends.protocol.credentials import TOKEN_ENV, TOKEN_FILE_ENV
from backends.redis.client import masked_url
from mn_deploy.order_keys import order_key, order_key_options
from mn_deploy.redis_reader import redis_option
from mn_deploy.usage import OneLineUsage, UsageRefused

log = logging.getLogger("mn_deploy.controller")

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


@click.group(cls=OneLineUsage)
def controller() -> None:
    """The controller daemon."""


@controller.command("run")
@redis_option
@click.option("--grpc", "grpc_address", envvar="MN_GRPC_ADDRESS", default=DEFAULT_ADDRESS, show_default=True)
@click.option("--lease-ttl-ms", type=click.IntRange(min=3), default=DEFAULT_TTL_MS, show_default=True)
@click.option("--node-ttl-ms", type=click.IntRange(min=1), default=wire.DEFAULT_NODE_TTL_MS, show_default=True)
@click.option(
    "--auth-token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"Tokens a gRPC call must carry, one a line, mode 600 [else {TOKEN_ENV}, else {TOKEN_FILE_ENV}].",
)
@click.option(
    "--read-token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="MN_GRPC_READ_TOKEN_FILE",
    help="Read-only tokens (Get, List, Resolve calls only), one a line, mode 600 [env: MN_GRPC_READ_TOKEN_FILE].",
)
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="MN_GRPC_TLS_CERT",
    help="Serve TLS with this PEM certificate chain [env: MN_GRPC_TLS_CERT].",
)
@click.option(
    "--tls-key",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="MN_GRPC_TLS_KEY",
    help="The PEM private key of --tls-cert [env: MN_GRPC_TLS_KEY].",
)
@click.option("--insecure", is_flag=True, help="Serve an address other hosts reach without a token (logged at start).")
@order_key_options
def run(
    redis_url: str,
    grpc_address: str,
    lease_ttl_ms: int,
    node_ttl_ms: int,
    auth_token_file: Path | None,
    read_token_file: Path | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    insecure: bool,
    order_key_file: Path | None,
    insecure_orders: bool,
) -> None:
    """Stand by until this controller holds the lease, then drive every deployment and serve the gRPC API.

    A second controller on the same Redis waits and takes over within the lease TTL when the leader dies.
    Every gRPC call must carry a token when one is given; without one, only a loopback --grpc is served,
    unless --insecure.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    door = _door(grpc_address, auth_token_file, read_token_file, tls_cert, tls_key, insecure)
    key = order_key(order_key_file, insecure_orders)
    config = DaemonConfig(
        redis_url, grpc_address, lease_ttl_ms=lease_ttl_ms, node_ttl_ms=node_ttl_ms, door=door, order_key=key
    )
    try:
        run_daemon(config, _stop_on_signals())
    except RuntimeError as error:  # grpc cannot bind the address
        raise click.ClickException(f"{grpc_address}: {error}") from None


def _door(
    address: str, token_file: Path | None, read_file: Path | None, cert: Path | None, key: Path | None, insecure: bool
) -> Door:
    """Who the API lets in, refused in one line (exit 2) before anything starts when it cannot be read, or when it
    would let anyone who reaches a non-loopback address deploy code onto every worker host."""
    if (cert is None) != (key is None):
        raise UsageRefused("--tls-cert and --tls-key go together")
    try:
        tokens = controller_tokens(token_file, read_file)
        tls = ServerTls.load(cert, key) if cert is not None and key is not None else None
    except (TokenError, TlsError) as error:
        raise UsageRefused(str(error)) from None
    exposed = not is_loopback(address)
    if not tokens and exposed:
        if not insecure:
            raise UsageRefused(
                f"refusing to serve gRPC on {address}, which other hosts may reach, without a token: "
                f"give --auth-token-file (or {TOKEN_FILE_ENV}), or --insecure to accept the risk"
            )
        log.warning(
            "--insecure: serving gRPC on %s without a token: whoever reaches it can run code on every worker", address
        )
    elif tls is None and exposed:
        log.warning(
            "serving gRPC on %s without TLS: tokens cross the network readable; give --tls-cert/--tls-key", address
        )
    return Door(tokens, tls)


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

    Redis keeps its records in an append-only file and is restarted with them if it dies. It requires a password
    made for the stack: `redis:` shows its URL masked, and the file on the `redis-url-file:` line (readable by
    you only) holds it whole, for `export MN_REDIS_URL=$(cat PATH)`. Every gRPC call must carry the token made
    for the stack, kept in the file of the `token-file:` line (readable by you only): export
    MN_GRPC_AUTH_TOKEN_FILE=PATH for `mn-deploy deployment` and `mn`.
    """
    stop = _stop_on_signals()
    stack = DevStack(mn_deploy_command(), workers=workers, grpc_address=grpc_address, workdir=workdir)
    try:
        stack.start()
        click.echo(f"redis: {masked_url(stack.redis_url)}")
        click.echo(f"redis-url-file: {stack.redis_url_file}")
        click.echo(f"grpc: {stack.grpc_address}")
        click.echo(f"token-file: {stack.token_file}")
        failed = stack.wait(stop, notify=lambda line: click.echo(line, err=True))
    except StackError as error:
        raise click.ClickException(str(error)) from None
    finally:
        stack.stop()
    if failed:
        raise click.ClickException(failed)
