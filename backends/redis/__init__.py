"""Store and Registry on Redis in MirrorNeuron's key layout (docs/redis-layout.md).

Make a client with `connect(url)`, then `RedisStore(client)` and `RedisRegistry(client)`.
"""

from backends.redis.client import connect
from backends.redis.codec import CorruptRecordError
from backends.redis.fencing import FencedError
from backends.redis.keys import Keys
from backends.redis.registry import RedisRegistry
from backends.redis.store import RedisStore, SweepReport
from backends.redis.transaction import BrokenTransactionError, Transaction

__all__ = [
    "BrokenTransactionError",
    "CorruptRecordError",
    "FencedError",
    "Keys",
    "RedisRegistry",
    "RedisStore",
    "SweepReport",
    "Transaction",
    "connect",
]
