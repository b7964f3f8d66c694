"""The one place redis-py clients are made, with every default that matters spelled out.

redis-py 8 would otherwise use a 5 s socket timeout and RESP3. A dropped connection is retried with
backoff; that is safe because every write we send is idempotent or detects its own earlier success
(see save_deployment.lua).
"""

from __future__ import annotations

from typing import Any

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError, TimeoutError
from redis.retry import Retry

DEFAULT_URL = "redis://127.0.0.1:6379/0"


def connect(
    url: str = DEFAULT_URL,
    *,
    socket_timeout: float | None = 2.0,
    connect_timeout: float = 2.0,
    retries: int = 3,
    **overrides: Any,
) -> redis.Redis:
    """A client that decodes replies to str and speaks RESP2, which every Redis MirrorNeuron runs on knows.

    Blocking readers (XREAD BLOCK, pub/sub) need their own client with `socket_timeout=None`.
    `overrides` go to redis-py as they are (tests pass a `connection_class`).
    """
    options: dict[str, Any] = {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": connect_timeout,
        "retry": Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.5), retries),
        "retry_on_error": [ConnectionError, TimeoutError],
        "protocol": 2,
        "decode_responses": True,
        **overrides,
    }
    return redis.Redis.from_url(url, **options)


def require_decoded(client: redis.Redis) -> None:
    """Stores and registries read replies as str; a bytes client would fail far from the cause."""
    if not client.get_connection_kwargs().get("decode_responses"):
        raise ValueError("the client must decode replies (decode_responses=True); make it with client.connect")
