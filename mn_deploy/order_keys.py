"""The order key options of `controller run` and `agent worker`, which must agree on one key.

Both refuse to start without a key unless `--insecure-orders` says so explicitly (and then log it at every start):
a worker without a key runs whatever anyone who can write to Redis orders (backends/protocol/signing.py). The key
comes from a file, named by an option or MN_ORDER_KEY_FILE, never from the command line itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from backends.protocol.signing import ENV, OrderKey, OrderKeyError
from mn_deploy.usage import UsageRefused

log = logging.getLogger(__name__)


def order_key_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--order-key-file PATH` (env MN_ORDER_KEY_FILE) and `--insecure-orders`."""
    command = click.option(
        "--insecure-orders",
        is_flag=True,
        help="Run without an order key: orders go unsigned (controller) or run unchecked (worker). Logged at "
        "every start.",
    )(command)
    return click.option(
        "--order-key-file",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar=ENV,
        help=f"The key placement orders are signed with, shared by controllers and workers (env {ENV}).",
    )(command)


def order_key(path: Path | None, insecure: bool) -> OrderKey | None:
    """The key the options name, or None with `--insecure-orders`; one line and exit 2 for anything else."""
    if path is not None and insecure:
        raise UsageRefused(f"--insecure-orders and an order key file ({path}) exclude each other")
    if insecure:
        log.warning("--insecure-orders: placement orders are neither signed nor verified")
        return None
    if path is None:
        raise UsageRefused(f"no order key: give --order-key-file PATH (or set {ENV}), or --insecure-orders")
    try:
        return OrderKey.load(path)
    except OrderKeyError as error:
        raise UsageRefused(str(error)) from None
