"""The Lua scripts (Lua 5.1, as Redis runs them; fakeredis runs the same text), bound to a client.

Each script is sent once by SHA (EVALSHA); redis-py reloads it if the server lost it (NOSCRIPT).
"""

from __future__ import annotations

from importlib.resources import files

import redis
from redis.commands.core import Script


def bind(client: redis.Redis, name: str) -> Script:
    """The script `lua/<name>.lua` registered on `client`."""
    return client.register_script(files(__package__).joinpath("lua", f"{name}.lua").read_text())
