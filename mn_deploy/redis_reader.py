"""What the commands that read the controller's Redis directly share (`service`, `deployment logs`): the `--redis`
option, and a client whose failures end the command in one line.

These commands read what workers write (discovery entries, log lines), which the controller's API does not carry.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
import redis

from backends.redis.client import DEFAULT_URL, connect
from mn_deploy.output import Output
from mn_deploy.usage import EXIT_USAGE

EXIT_NONE_FOUND = 1
EXIT_UNREACHABLE = 3

redis_option = click.option(
    "--redis",
    "redis_url",
    envvar="MN_REDIS_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="The controller's Redis (env MN_REDIS_URL).",
)


@contextmanager
def reading(out: Output, redis_url: str) -> Iterator[redis.Redis]:
    """A client of the Redis at `redis_url`, closed after; a bad URL exits 2, a Redis that cannot answer 3."""
    try:
        client = connect(redis_url)
    except ValueError as error:  # not a Redis URL
        out.exit(f"--redis {redis_url}: {error}", EXIT_USAGE)
    try:
        yield client
    except redis.RedisError as error:
        out.exit(f"Redis at {redis_url} could not answer: {error}", EXIT_UNREACHABLE)
    finally:
        client.close()
