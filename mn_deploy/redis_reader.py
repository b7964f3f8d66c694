"""What the commands that read the controller's Redis directly share (`service`, `deployment logs`): the `--redis`
option, and a client whose failures end the command in one line.

These commands read what workers write (discovery entries, log lines), which the controller's API does not carry.
The daemons (`controller run`, `agent worker`) take their Redis with the same option. A URL may carry a password:
every message here shows it masked (client.masked_url).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
import redis

from backends.redis.client import DEFAULT_URL, check_url, connect, masked_url
from mn_deploy.output import Output
from mn_deploy.usage import EXIT_USAGE

EXIT_NONE_FOUND = 1
EXIT_UNREACHABLE = 3


def _checked_url(ctx: click.Context, param: click.Parameter, url: str) -> str:
    """A URL that is no Redis URL is a usage error before anything starts, shown masked."""
    try:
        check_url(url)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    return url


redis_option = click.option(
    "--redis",
    "redis_url",
    envvar="MN_REDIS_URL",
    default=DEFAULT_URL,
    show_default=True,
    callback=_checked_url,
    help="The controller's Redis: redis://[USER:PASSWORD@]HOST:PORT/DB, or rediss://... with TLS options "
    "(env MN_REDIS_URL, which keeps a password off the command line).",
)


@contextmanager
def reading(out: Output, redis_url: str) -> Iterator[redis.Redis]:
    """A client of the Redis at `redis_url`, closed after; a bad URL exits 2, a Redis that cannot answer 3."""
    try:
        client = connect(redis_url)
    except ValueError as error:  # not a Redis URL
        out.exit(f"--redis: {error}", EXIT_USAGE)  # the error names the URL, masked
    try:
        yield client
    except redis.RedisError as error:
        out.exit(f"Redis at {masked_url(redis_url)} could not answer: {error}", EXIT_UNREACHABLE)
    finally:
        client.close()
