"""The Lua scripts (Lua 5.1, as Redis runs them; fakeredis runs the same text), bound to a client.

Each script is sent once by SHA (EVALSHA); redis-py reloads it if the server lost it (NOSCRIPT).
"""

from __future__ import annotations

from importlib.resources import files

import redis
from redis.commands.core import Script


def bind(client: redis.Redis, name: str) -> Script:
    """The script `lua/<name>.lua` registered on `client`."""
    return client.register_script(_text(name))


def bind_fenced(client: redis.Redis, name: str) -> Script:
    """`lua/<name>.lua` behind the fence check of `lua/fence.lua`: call it with the lease key before its KEYS
    and the lease value the writer holds ('' = unfenced) before its ARGV."""
    return client.register_script(_text("fence") + _text(name))


def _text(name: str) -> str:
    return files(__package__).joinpath("lua", f"{name}.lua").read_text()
