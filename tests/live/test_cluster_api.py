"""MirrorNeuron's ClusterService lookups over discovery in a real Redis, called through the official SDK client and
the `mn service` CLI; the cluster methods we do not serve answer UNIMPLEMENTED with one log line."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis

from backends.live.controller import serve
from backends.loopback import free_port
from backends.redis.registry import RedisRegistry
from mn_deploy_core.ports import ServiceInstance
from tests.live.test_grpc_api import rpc_error
from tests.scripted import World

HOST = "10.0.0.7"


@dataclass
class Discovery:
    """A server over `registry`, and the SDK client of it."""

    registry: RedisRegistry
    target: str
    client: Any

    def add(self, instance_id: str, *, role: str = "primary", passing: bool = True, name: str = "api") -> None:
        """An instance as the controller registers it and its worker renews it (node, host, port)."""
        service = ServiceInstance(name, instance_id, "web", "job_hello_1", "dep_hello_1", "hello", "1", role, passing)
        self.registry.register(service)
        self.registry.heartbeat(instance_id, {"node": "node-1", "host": HOST, "port": "8080"})

    def listed(self, **query: Any) -> list[str]:
        return [s["instance_id"] for s in json.loads(self.client.list_services(**query))["services"]]

    def resolved(self, name: str, **query: Any) -> list[str]:
        return [s["instance_id"] for s in json.loads(self.client.resolve_service(name, **query))["services"]]


@pytest.fixture
def discovery(real_redis: redis.Redis, mn_home: Path) -> Iterator[Discovery]:
    from mn_sdk import Client  # imported once MN_HOME is set: the SDK opens its log file at import

    registry = RedisRegistry(real_redis, namespace="mn_cluster_test")
    target = f"127.0.0.1:{free_port()}"
    server = serve(World().controller, target, registry=registry)
    client = Client(target=target, timeout=10)
    yield Discovery(registry, target, client)
    client.channel.close()
    server.stop(None).wait()


def test_a_resolve_answers_the_primary_passing_instances_with_where_to_connect(discovery: Discovery) -> None:
    discovery.add("i1")

    [found] = json.loads(discovery.client.resolve_service("api"))["services"]

    assert found == {
        "id": "i1",
        "address": HOST,
        "status": "passing",
        "tags": [],
        "name": "api",
        "instance_id": "i1",
        "agent_id": "web",
        "job_id": "job_hello_1",
        "deployment_id": "dep_hello_1",
        "deployment_key": "hello",
        "deployment_version": "1",
        "deployment_role": "primary",
        "passing": True,
        "node": "node-1",
        "host": HOST,
        "port": 8080,
    }


def test_canaries_and_candidates_are_never_found_and_failing_ones_only_when_asked(discovery: Discovery) -> None:
    discovery.add("i1")
    discovery.add("i2", passing=False)
    discovery.add("i3", role="canary")
    discovery.add("i4", role="candidate")

    assert discovery.resolved("api") == ["i1"]
    assert discovery.resolved("api", passing_only=False) == ["i1", "i2"]
    assert discovery.listed() == ["i1"]
    assert discovery.listed(passing_only=False) == ["i1", "i2"]


def test_a_list_is_of_every_service_and_filters_as_mirrorneuron_does(discovery: Discovery) -> None:
    discovery.add("i1")
    discovery.add("i2", name="db")

    assert discovery.listed() == ["i1", "i2"]
    assert discovery.listed(name="db") == ["i2"]
    assert discovery.listed(node="node-1", job_id="job_hello_1", status="passing") == ["i1", "i2"]
    assert discovery.listed(node="node-2") == []
    assert discovery.listed(status="critical") == []
    assert discovery.resolved("api", tags=["gpu"]) == []  # entries carry no tags
    assert discovery.resolved("nothing") == []


def test_a_bad_query_is_invalid_in_one_line(discovery: Discovery) -> None:
    from mn_sdk.proto import cluster_pb2

    request = cluster_pb2.ListServicesRequest(query_json='{"passing_only": "yes"}', version=1)
    error = rpc_error(discovery.client.cluster_stub.ListServices, request)
    nameless = rpc_error(discovery.client.resolve_service, " ")

    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "query_json.passing_only must be true or false"
    assert (nameless.code(), nameless.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "name is required")


def test_an_unserved_cluster_method_is_unimplemented_with_one_log_line(
    discovery: Discovery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)

    error = rpc_error(discovery.client.get_system_summary)

    assert error.code() is grpc.StatusCode.UNIMPLEMENTED
    assert [(r.name, r.getMessage(), r.exc_info) for r in caplog.records if r.name != "mn-sdk"] == [
        (
            "backends.live.controller.server",
            "ClusterService.GetSystemSummary called: not implemented by mn-deploy, answered UNIMPLEMENTED",
            None,
        )
    ]


def test_the_official_cli_lists_and_resolves(discovery: Discovery) -> None:
    discovery.add("i1")
    discovery.add("i3", role="canary")
    env = {**os.environ, "MN_GRPC_TARGET": discovery.target, "MN_CLI_OUTPUT": "plain", "NO_COLOR": "1"}
    cli = str(Path(sys.executable).with_name("mn"))

    def mn(*args: str) -> Any:
        done = subprocess.run([cli, "service", *args], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        return [s["instance_id"] for s in json.loads(done.stdout)["services"]]

    assert mn("list") == ["i1"]
    assert mn("resolve", "api") == ["i1"]
    assert mn("resolve", "api", "--all") == ["i1"]
