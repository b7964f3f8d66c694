"""Least-privilege Redis ACL users for the controller and for each worker, built from the key layout (keys.py).

A worker's credentials should not let their holder decide what runs: with the worker rules a client can read its
own node's orders and the bundles, and write only what a worker reports (its heartbeat and registration, its
node's process hash, facts, log lines, renewals of discovery entries). Deployment records, versions, counters,
the lease and other nodes' orders are out of its reach: such a write is refused with NOPERM. The controller gets
every key of its namespace but no administrative command (CONFIG, FLUSHALL, ACL, ...).

docs/redis-layout.md shows the rules these functions make for the default namespace, as `ACL SETUSER` commands.
"""

from __future__ import annotations

from backends.redis.keys import Keys

# What redis-py and the scripts need beyond the data commands: a PING, and loading the scripts. (On Redis 7.2 and
# later, redis-py also names itself with CLIENT SETINFO: add `+client|setinfo`, which 7.0 does not know, or the
# refusal it ignores fills the ACL log.)
_CONNECTION = ("+ping", "+evalsha", "+script|load", "+script|exists")
WORKER_COMMANDS = (
    *_CONNECTION,
    *("+get", "+set", "+del", "+exists", "+pexpire", "+sadd"),  # heartbeat, registration, bundles
    *("+hget", "+hgetall", "+hmget", "+hset", "+hdel"),  # desired orders, its process hash, discovery renewals
    *("+xadd", "+xread", "+xrevrange"),  # facts, orders, log lines
    *("+zadd", "+zremrangebyscore"),  # the log index
)


def worker_rules(keys: Keys, node: str) -> list[str]:
    """The ACL rules (after the user name, before the password) of the user one node's worker connects as."""
    node_key = f"{keys.node_prefix}{node}:"
    read = [f"{node_key}assignments", f"{keys.prefix}bundle:*"]
    write = [
        f"{node_key}heartbeat",
        f"{node_key}runtime",
        f"{node_key}desired",  # a completed batch instance leaves it (lua/complete.lua)
        keys.nodes,
        keys.node_ttl,  # only read, but Redis counts a key given to a script as written (lua/node_heartbeat.lua)
        keys.assigned,  # ... and `assigned`, while that names this node
        keys.facts,
        f"{keys.prefix}rollout:logs:*",
        keys.instance("*"),  # discovery renewals (lua/renew.lua)
    ]
    patterns = [f"%R~{_escaped(key)}" for key in read] + [f"~{_escaped(key)}" for key in write]
    return ["reset", "on", "resetchannels", *patterns, *WORKER_COMMANDS]


def controller_rules(keys: Keys) -> list[str]:
    """The ACL rules of the user the controllers connect as: every key of the namespace, no admin command."""
    return ["reset", "on", "resetchannels", f"~{_escaped(keys.prefix)}*", "+@all", "-@admin", "-@dangerous"]


def _escaped(key: str) -> str:
    """A key as a glob that matches only itself where it has no `*` of its own (node names may hold `?[]\\`)."""
    return "".join(f"\\{c}" if c in "?[]\\" else c for c in key)
