"""A server with `appendonly yes` killed with SIGKILL keeps every write it acknowledged."""

from __future__ import annotations

from backends.redis import RedisStore, connect
from mn_deploy_core.records import deployment_id
from tests.backends import samples
from tests.backends.conftest import NAMESPACE
from tests.conftest import RedisServerFactory

DEPLOYS = 50


def test_every_acknowledged_write_survives_sigkill(redis_server_factory: RedisServerFactory) -> None:
    server = redis_server_factory(appendonly=True)
    client = connect(server.url)
    store = RedisStore(client, namespace=NAMESPACE)
    for _ in range(DEPLOYS):
        number, version = store.allocate_deployment_number("api"), store.allocate_version("api")
        store.save_version(samples.version("api", version, deployment=deployment_id("api", number)))
        record = samples.deployment("api", number, current_version=version)
        record.revision = store.save_deployment(record, [samples.event("deployment_started")])
        record.status = "successful"
        store.save_deployment(record, [samples.event("deployment_successful")])
    before = [r.to_json() for r in store.list_deployments()]
    client.close()

    server.kill()
    server.start()

    client = connect(server.url)
    store = RedisStore(client, namespace=NAMESPACE)
    assert [r.to_json() for r in store.list_deployments()] == before
    assert [r["revision"] for r in before] == [2] * DEPLOYS
    assert [v.version for v in store.list_versions("api")] == [str(n) for n in range(1, DEPLOYS + 1)]
    assert store.current_deployment_id("api") == deployment_id("api", DEPLOYS)
    assert [e.type for e in store.deployment_events(deployment_id("api", 1))] == [
        "deployment_started",
        "deployment_successful",
    ]
    assert store.allocate_version("api") == str(DEPLOYS + 1)
    client.close()
