"""`mn-deploy agent worker`: run the instances the controller assigns to one node.

SIGTERM or SIGINT stops every instance (SIGTERM, then SIGKILL after the grace period) before the worker exits.
A usage error (an option out of range, from the command line or its environment variable) and a Redis that
cannot be reached at start are one line and exit code 2.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType

import click
import redis

from backends.live.worker.daemon import Worker
from backends.live.worker.supervisor import AgentUser
from backends.redis.client import connect, masked_url
from backends.redis.registry import DEFAULT_TTL_MS
from mn_deploy.order_keys import order_key, order_key_options
from mn_deploy.redis_reader import redis_option
from mn_deploy.usage import OneLineUsage


@click.group(cls=OneLineUsage)
def agent() -> None:
    """Agent workers: the processes that run deployed instances on a node."""


@agent.command()
@redis_option
@click.option("--node", required=True, help="This node's name; unique among the workers of one Redis.")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where instance directories are made.  [default: <tmp>/mn-deploy/<node>]",
)
@click.option("--heartbeat-ms", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--grace-ms", type=click.IntRange(min=0), default=5000, show_default=True, help="SIGTERM to SIGKILL.")
@click.option(
    "--registry-ttl-ms",
    type=click.IntRange(min=3),
    default=DEFAULT_TTL_MS,
    show_default=True,
    envvar="MN_REGISTRY_TTL_MS",
    help="How long a discovery entry outlives its instance's last renewal; renewed every third of it "
    "(env MN_REGISTRY_TTL_MS).",
)
@click.option(
    "--advertise-host",
    help="The host name discovery entries carry, for clients to connect to (env MN_ADVERTISE_HOST).  "
    "[default: this machine's host name]",
    envvar="MN_ADVERTISE_HOST",
)
@order_key_options
@click.option(
    "--run-as",
    metavar="USER",
    help="Run agents (and their exec checks) as USER, their files theirs; the worker must run as root, and USER "
    "must be able to reach --workdir.  [default: the worker's user]",
)
def worker(
    redis_url: str,
    node: str,
    workdir: Path | None,
    heartbeat_ms: int,
    grace_ms: int,
    registry_ttl_ms: int,
    advertise_host: str | None,
    order_key_file: Path | None,
    insecure_orders: bool,
    run_as: str | None,
) -> None:
    """Register NODE with a heartbeat and run the instances assigned to it until stopped."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    key = order_key(order_key_file, insecure_orders)
    directory = workdir or Path(tempfile.gettempdir()) / "mn-deploy" / node
    user = None if run_as is None else agent_user(run_as, directory)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    client = connect(redis_url)
    try:
        client.ping()
    except redis.RedisError as error:
        click.echo(f"error: Redis at {masked_url(redis_url)} is unreachable: {error}", err=True)
        sys.exit(2)
    Worker(
        client,
        node,
        workdir=directory,
        heartbeat_ms=heartbeat_ms,
        grace_ms=grace_ms,
        registry_ttl_ms=registry_ttl_ms,
        host=advertise_host,
        order_key=key,
        run_as=user,
    ).run(stop)


def agent_user(name: str, workdir: Path) -> AgentUser:
    """The user of `--run-as`, once it is known that the worker can switch to it and that it can reach `workdir`
    (what of it exists); else one line and exit 2."""
    try:
        user = AgentUser.named(name)
        if os.geteuid() != 0:
            raise ValueError("the worker must run as root to run agents as another user")
        blocked = user.blocked_at(workdir)
    except (ValueError, OSError) as error:
        raise click.UsageError(f"--run-as {name}: {error}") from None
    if blocked is not None:
        raise click.UsageError(f"--run-as {name}: user {user.name} cannot search {blocked}, on the way to --workdir")
    return user
