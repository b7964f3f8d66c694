"""What `mn-deploy dev up` prints once its stack is ready, read as the tests that start it as a user would need."""

from __future__ import annotations

from typing import IO

DEV_UP_LINES = {"redis", "redis-url-file", "grpc", "token-file"}
"""What `dev up` prints once ready, one `name: value` line each, as the docs tell users to read them."""


def dev_up_lines(stream: IO[str] | None) -> dict[str, str]:
    """Every line of DEV_UP_LINES, by name; what came before it stopped, if it exits first."""
    assert stream is not None
    printed: dict[str, str] = {}
    while not printed.keys() >= DEV_UP_LINES and (line := stream.readline()):
        name, _, value = line.strip().partition(": ")
        printed[name] = value
    return printed
