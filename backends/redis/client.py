"""The one place redis-py clients are made, with every default that matters spelled out.

redis-py 8 would otherwise use a 5 s socket timeout and RESP3. A dropped connection is retried with
backoff; that is safe because every write we send is idempotent or detects its own earlier success
(see save_deployment.lua).

A URL is `redis://[user:password@]host:port/db` or, over TLS, `rediss://...` with the TLS options as query
parameters (`ssl_ca_certs`, `ssl_certfile`, ...; TLS_OPTIONS). A URL may carry a password: anything that shows
one to a person (a log line, an error, status output) shows `masked_url(url)` instead.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError, TimeoutError
from redis.retry import Retry

DEFAULT_URL = "redis://127.0.0.1:6379/0"
SCHEMES = ("redis", "rediss")
MASK = "***"
TLS_OPTIONS = {
    "ssl_ca_certs": "a PEM file of the CA certificates to trust",
    "ssl_ca_path": "a directory of CA certificates to trust",
    "ssl_certfile": "this client's certificate, for a server that asks for one",
    "ssl_keyfile": "the key of that certificate",
    "ssl_cert_reqs": "required (the default), optional or none (no verification: tests only)",
    "ssl_check_hostname": "true (the default) or false",
}
"""The query parameters a `rediss://` URL may carry, each what redis-py's option of that name takes."""
_QUERY_OPTIONS = {"db", "socket_timeout", "socket_connect_timeout"}


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
    `overrides` go to redis-py as they are (tests pass a `connection_class`). A URL redis-py would accept but
    fail on later (an unknown query parameter, TLS options without TLS) is a ValueError here, whose message
    shows the URL masked.
    """
    check_url(url)
    options: dict[str, Any] = {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": connect_timeout,
        "retry": Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.5), retries),
        "retry_on_error": [ConnectionError, TimeoutError],
        "protocol": 2,
        "decode_responses": True,
        **overrides,
    }
    try:
        return redis.Redis.from_url(url, **options)
    except ValueError as error:  # redis-py's own checks (a bad port or db); their messages show no password
        raise ValueError(f"{masked_url(url)}: {error}") from None


def check_url(url: str) -> None:
    """Refuse, in one line naming the masked URL, what is not `redis[s]://` with only the options we document."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a port out of range or not a number raises here
    except ValueError as error:
        raise ValueError(f"{masked_url(url)}: {error}") from None
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise ValueError(f"{masked_url(url)}: not a Redis URL (redis://[USER:PASSWORD@]HOST:PORT/DB or rediss://...)")
    if parts.path.strip("/") and not parts.path.strip("/").isdigit():  # redis-py would quietly use database 0
        raise ValueError(f"{masked_url(url)}: the path must be /DB, a database number")
    for name, _ in parse_qsl(parts.query, keep_blank_values=True):
        if name in TLS_OPTIONS and parts.scheme != "rediss":
            raise ValueError(f"{masked_url(url)}: {name} needs TLS: use rediss://")
        if name not in TLS_OPTIONS and name not in _QUERY_OPTIONS:
            known = ", ".join(sorted({*TLS_OPTIONS, *_QUERY_OPTIONS}))
            raise ValueError(f"{masked_url(url)}: unknown option {name!r} (known: {known})")


def masked_url(url: str) -> str:
    """`url` with its password (and a lone user-info part, which may be one) replaced by ***: what a log line,
    an error or status output may show of a Redis URL."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK  # not even a URL: it may be all secret
    if "@" not in parts.netloc:
        return url
    userinfo, host = parts.netloc.rsplit("@", 1)
    user, colon, _ = userinfo.partition(":")
    masked = f"{user}:{MASK}" if colon else MASK
    return urlunsplit(parts._replace(netloc=f"{masked}@{host}"))


def require_decoded(client: redis.Redis) -> None:
    """Stores and registries read replies as str; a bytes client would fail far from the cause."""
    if not client.get_connection_kwargs().get("decode_responses"):
        raise ValueError("the client must decode replies (decode_responses=True); make it with client.connect")
