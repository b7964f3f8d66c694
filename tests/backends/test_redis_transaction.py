"""One decision, one transaction: a controller's records, orders to workers and discovery changes reach Redis
whole or not at all, on fakeredis and a real redis-server."""

from __future__ import annotations

import pytest
import redis

from backends.live.controller.runtime import RedisRuntime
from backends.redis import BrokenTransactionError, FencedError, Keys, RedisRegistry, RedisStore, Transaction
from backends.redis.fencing import Fence
from backends.redis.transaction import Precondition
from mn_deploy_core.errors import ConflictError, DeploymentError
from mn_deploy_core.ports import Commit
from mn_deploy_core.records import InstanceRecord
from tests.backends import samples
from tests.backends.conftest import NAMESPACE
from tests.placements import a_placement

K = Keys(NAMESPACE)
TERM = "controller-a:1"


class Decisions:
    """A controller's writers on one transaction, fenced with `TERM`, as the daemon makes them."""

    def __init__(self, client: redis.Redis) -> None:
        client.set(K.controller_lease, TERM)
        client.set(K.node_heartbeat("n1"), "w", px=60_000)
        client.sadd(K.nodes, "n1")
        self.transaction = Transaction(client, Fence(K.controller_lease, TERM), breaks=True)
        self.store = RedisStore(client, namespace=NAMESPACE, transaction=self.transaction)
        self.runtime = RedisRuntime(client, namespace=NAMESPACE, transaction=self.transaction)
        self.registry = RedisRegistry(client, namespace=NAMESPACE, transaction=self.transaction)

    def decide(self, instance_id: str, number: int = 1, revision: int = 0) -> list[int]:
        """Place an instance, register it, and store the record, version and instance record that say so."""
        self.runtime.place(a_placement(instance_id=instance_id))
        self.registry.register(samples.service(instance_id))
        record = samples.deployment("agent-api", number)
        record.revision = revision
        instance = InstanceRecord(instance_id, "w-0", "job-1", "agent-api", record.deployment_id, "1", "primary", 0.0)
        return self.store.commit(Commit([(record, ())], [samples.version("agent-api", "1")], [instance], []))


def written(client: redis.Redis) -> dict[str, object]:
    """What a decision of `Decisions.decide` leaves in Redis."""
    return {
        "records": sorted(client.smembers(K.deployments)),
        "versions": sorted(client.smembers(K.versions("agent-api"))),
        "instances": sorted(client.hkeys(K.live_instances)),
        "desired": sorted(client.hkeys(K.node_desired("n1"))),
        "orders": client.exists(K.node_assignments("n1")),
        "registry": sorted(client.smembers(K.service("api"))),
    }


NOTHING = {"records": [], "versions": [], "instances": [], "desired": [], "orders": 0, "registry": []}


def test_a_decision_is_stored_whole_and_only_when_committed(redis_client: redis.Redis) -> None:
    decisions = Decisions(redis_client)
    decisions.runtime.place(a_placement(instance_id="i1"))
    decisions.registry.register(samples.service("i1"))
    assert written(redis_client) == NOTHING  # queued, not sent: a crash here leaves nothing
    decisions.transaction.commit()
    assert written(redis_client)["desired"] == ["i1"]
    assert written(redis_client)["registry"] == ["i1"]


def test_a_decision_with_its_orders_records_and_discovery_in_one_commit(redis_client: redis.Redis) -> None:
    assert Decisions(redis_client).decide("i1") == [1]
    assert written(redis_client) == {
        "records": ["dep_agent-api_1"],
        "versions": ["1"],
        "instances": ["i1"],
        "desired": ["i1"],
        "orders": 1,
        "registry": ["i1"],
    }


def test_a_stale_record_fails_the_whole_decision(redis_client: redis.Redis) -> None:
    decisions = Decisions(redis_client)
    with pytest.raises(ConflictError, match="expected revision 3, found 0"):
        decisions.decide("i1", revision=3)
    assert written(redis_client) == NOTHING


def test_a_fenced_decision_writes_nothing_and_breaks_the_term(redis_client: redis.Redis) -> None:
    decisions = Decisions(redis_client)
    redis_client.set(K.controller_lease, "controller-b:2")  # a successor took the lease
    with pytest.raises(FencedError):
        decisions.decide("i1")
    assert written(redis_client) == NOTHING
    with pytest.raises(BrokenTransactionError, match="take over again"):
        decisions.runtime.place(a_placement(instance_id="i2"))
    assert written(redis_client) == NOTHING


def test_a_watched_key_changed_before_exec_is_checked_again(redis_client: redis.Redis) -> None:
    """Another writer changes a watched key between the check and EXEC: Redis drops the transaction, and it
    is sent again once its preconditions are checked on what is there now."""
    transaction = Transaction(redis_client, Fence(K.controller_lease, None))
    checks = []

    def unchanged(pipe: redis.client.Pipeline) -> Exception | None:
        checks.append(pipe.get("mn_test:watched"))
        if len(checks) == 1:
            redis_client.set("mn_test:watched", "changed")  # another client: the WATCH fires
        return None

    transaction.write(lambda pipe: pipe.set("mn_test:written", "1"), Precondition(("mn_test:watched",), unchanged))
    transaction.commit()
    assert checks == [None, "changed"]
    assert redis_client.get("mn_test:written") == "1"


def test_a_broken_precondition_sends_nothing(redis_client: redis.Redis) -> None:
    transaction = Transaction(redis_client, Fence(K.controller_lease, None))
    transaction.write(lambda pipe: pipe.set("mn_test:first", "1"))
    transaction.write(
        lambda pipe: pipe.set("mn_test:second", "1"),
        Precondition(("mn_test:second",), lambda pipe: ConflictError("dep", 1, 2)),
    )
    with pytest.raises(ConflictError):
        transaction.commit()
    assert redis_client.exists("mn_test:first", "mn_test:second") == 0
    transaction.write(lambda pipe: pipe.set("mn_test:first", "1"))  # a transaction that does not break goes on
    transaction.commit()
    assert redis_client.get("mn_test:first") == "1"


def test_placements_of_one_decision_spread_over_the_nodes(redis_client: redis.Redis) -> None:
    """Orders not committed yet count in a node's load, so one decision's placements do not all go to the node
    that was least loaded before it."""
    decisions = Decisions(redis_client)
    redis_client.set(K.node_heartbeat("n2"), "w", px=60_000)
    redis_client.sadd(K.nodes, "n2")
    for instance_id in ("i1", "i2", "i3", "i4"):
        decisions.runtime.place(a_placement(instance_id=instance_id))
    decisions.runtime.stop("i1")  # a stop of this decision's own placement finds its node
    decisions.transaction.commit()
    assert sorted(redis_client.hkeys(K.node_desired("n1"))) == ["i3"]
    assert sorted(redis_client.hkeys(K.node_desired("n2"))) == ["i2", "i4"]


def test_numbers_are_allocated_in_the_decision_that_uses_them(redis_client: redis.Redis) -> None:
    """Handed out distinct within a decision, written only with it: a decision that is lost leaves no gap."""
    decisions = Decisions(redis_client)
    assert [decisions.store.allocate_version("agent-api") for _ in range(2)] == ["1", "2"]
    assert decisions.store.allocate_deployment_number("agent-api") == 1
    assert redis_client.get(K.last_version("agent-api")) is None  # not sent yet

    redis_client.set(K.controller_lease, "controller-b:2")  # the decision is lost: fenced
    with pytest.raises(FencedError):
        decisions.transaction.commit()
    successor = Decisions(redis_client)
    assert successor.store.allocate_version("agent-api") == "1"  # nothing was skipped
    successor.transaction.commit()
    assert redis_client.get(K.last_version("agent-api")) == "1"


def test_a_number_another_writer_took_meanwhile_fails_the_decision(redis_client: redis.Redis) -> None:
    decisions = Decisions(redis_client)
    assert decisions.store.allocate_version("agent-api") == "1"
    RedisStore(redis_client, namespace=NAMESPACE).save_version(samples.version("agent-api", "1"))  # MirrorNeuron

    with pytest.raises(DeploymentError, match="another writer allocated"):
        decisions.transaction.commit()
