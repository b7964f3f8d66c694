"""Bad input at the gRPC door, fuzzed, against a real server over a controller on a real redis-server.

Every class of bad input (garbage JSON, wrong types, huge strings, deep nesting and non-finite numbers, odd ids and
keys, odd version strings, payload keys) is refused with one line, INVALID_ARGUMENT or NOT_FOUND,
never INTERNAL or UNKNOWN (an error the service did not expect), and Redis is left exactly as it was.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from backends.live.controller import serve
from backends.live.controller.arguments import shown
from backends.live.controller.job_service import MAX_DETAIL_BYTES, detail
from backends.live.controller.runtime import RedisRuntime
from backends.loopback import free_port
from backends.protocol import cluster_pb2, cluster_pb2_grpc, job_pb2, job_pb2_grpc
from backends.redis import Keys, RedisRegistry, RedisStore
from backends.redis.bundles import RedisBundleStore
from backends.redis.fencing import Fence
from backends.redis.instance_runtime import InstanceRuntime
from backends.redis.transaction import Transaction
from mn_deploy_core.controller import Controller
from tests.awkward import awkward_values, nested, odd_text
from tests.scripted import ManualClock, service_manifest

NAMESPACE = "mn_door"
V1 = service_manifest("agent:1")
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
REFUSED = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND}
HUGE = 1_000_000
"""Characters of a huge string: far over any id, reason or name, far under the request limit."""


@dataclass
class Door:
    """A JobService and a ClusterService over a controller on Redis, stubs of our own wire to call them, and the
    database they write."""

    client: redis.Redis
    jobs: job_pb2_grpc.JobServiceStub
    cluster: cluster_pb2_grpc.ClusterServiceStub
    channel: grpc.Channel

    def snapshot(self) -> dict[str, bytes | None]:
        """Every key of the database with its serialized value: equal snapshots, nothing written."""
        return {str(name): self.client.dump(name) for name in sorted(self.client.scan_iter(count=1000))}


@pytest.fixture
def door(real_redis: redis.Redis, mn_home: Path) -> Iterator[Door]:
    """As the daemon wires a leader (daemon.py `_lead`), with an unfenced transaction and a manual clock."""
    keys = Keys(NAMESPACE)
    decisions = Transaction(real_redis, Fence(keys.controller_lease, None), breaks=True)
    runtime = RedisRuntime(real_redis, namespace=NAMESPACE, transaction=decisions)
    store = RedisStore(real_redis, namespace=NAMESPACE, transaction=decisions)
    controller = Controller(store, runtime, RedisRegistry(real_redis, namespace=NAMESPACE, transaction=decisions))
    target = f"127.0.0.1:{free_port()}"
    server = serve(
        controller,
        target,
        lock=threading.Lock(),
        bundles=RedisBundleStore(real_redis, namespace=NAMESPACE),
        clock=ManualClock(),
        registry=RedisRegistry(real_redis, namespace=NAMESPACE),
        runtime=InstanceRuntime(real_redis, namespace=NAMESPACE),
    )
    channel = grpc.insecure_channel(target)
    stubs = Door(
        real_redis, job_pb2_grpc.JobServiceStub(channel), cluster_pb2_grpc.ClusterServiceStub(channel), channel
    )
    stubs.jobs.DeployJob(job_pb2.DeployJobRequest(manifest_json=json.dumps(V1)), timeout=10)  # something to keep
    yield stubs
    channel.close()
    server.stop(None).wait()


Call = Callable[..., Any]


def refused(door: Door, call: Call, request: Any) -> grpc.RpcError:
    """The error `call(request)` is refused with, one line of INVALID_ARGUMENT or NOT_FOUND, Redis unchanged."""
    before = door.snapshot()
    with pytest.raises(grpc.RpcError) as caught:
        call(request, timeout=10)
    error = caught.value
    assert error.code() in REFUSED, (error.code(), error.details())
    assert error.details() and "\n" not in error.details() and "Traceback" not in error.details()
    assert door.snapshot() == before
    return error


def json_fields(door: Door, text: str) -> list[tuple[Call, Any]]:
    """Every request with a `*_json` field, that field set to `text` and the rest valid."""
    manifest = json.dumps({**V1, "deployment": {"key": "fuzzed"}})
    return [
        (door.jobs.DeployJob, job_pb2.DeployJobRequest(manifest_json=text, payloads={"a.json": b"{}"})),
        (door.jobs.UpdateDeployment, job_pb2.UpdateDeploymentRequest(manifest_json=text)),
        (door.jobs.DeployJob, job_pb2.DeployJobRequest(manifest_json=manifest, update_policy_json=text)),
        (door.jobs.ListDeployments, job_pb2.ListDeploymentsRequest(query_json=text)),
        (door.cluster.ListServices, cluster_pb2.ListServicesRequest(query_json=text)),
        (door.cluster.ResolveService, cluster_pb2.ResolveServiceRequest(name="agent-api", query_json=text)),
    ]


def id_fields(door: Door, text: str) -> list[tuple[Call, Any]]:
    """Every request that names a deployment, a job or a service, by `text`."""
    return [
        (door.jobs.GetDeployment, job_pb2.GetDeploymentRequest(id_or_key=text)),
        (door.jobs.PromoteDeployment, job_pb2.PromoteDeploymentRequest(id_or_key=text)),
        (door.jobs.RollbackDeployment, job_pb2.RollbackDeploymentRequest(id_or_key=text)),
        (door.jobs.PauseDeployment, job_pb2.DeploymentActionRequest(id_or_key=text)),
        (door.jobs.ResumeDeployment, job_pb2.DeploymentActionRequest(id_or_key=text)),
        (door.jobs.FailDeployment, job_pb2.DeploymentActionRequest(id_or_key=text)),
        (door.jobs.GetJob, job_pb2.GetJobRequest(job_id=text)),
        (door.jobs.CancelJob, job_pb2.CancelJobRequest(job_id=text)),
    ]


def _parses(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


# ---- garbage JSON -----------------------------------------------------------------------------------------------


@FUZZ
@given(text=st.text(st.characters(exclude_categories=["Cs"])).filter(lambda t: t.strip() and not _parses(t)))
@example(text="{nodes")
@example(text='{"a": 1,}')
@example(text="\x00")
@example(text="[1, 2")
@example(text="{'single': 'quotes'}")
def test_garbage_json_in_any_json_field_is_refused_and_writes_nothing(door: Door, text: str) -> None:
    for call, request in json_fields(door, text):
        error = refused(door, call, request)
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT


# ---- wrong types ------------------------------------------------------------------------------------------------

_not_string = st.none() | st.booleans() | st.integers() | st.lists(st.text(max_size=3), max_size=2)
_not_integer = st.none() | st.booleans() | st.text(max_size=5) | st.floats(allow_nan=False, allow_infinity=False)
_not_object = st.none() | st.booleans() | st.integers() | st.text(max_size=5) | st.lists(st.integers(), max_size=2)


@FUZZ
@given(
    field=st.sampled_from(["deployment_key", "status", "after"]),
    value=_not_string,
    limit=_not_integer | st.integers(max_value=0) | st.integers(min_value=1001),
)
def test_a_list_query_of_wrong_types_is_refused(door: Door, field: str, value: Any, limit: Any) -> None:
    """A filter that is no string, a limit that is no integer from 1 to 1000 (a number of another type, a string
    of digits, a boolean): each refused naming the field."""
    for query, named in (({field: value}, field), ({"limit": limit}, "limit")):
        if query[named] is None and named != "limit":
            continue  # a null filter is no filter
        error = refused(door, door.jobs.ListDeployments, job_pb2.ListDeploymentsRequest(query_json=json.dumps(query)))
        assert error.details().startswith(f"query_json.{named} must be ")


@FUZZ
@given(
    field=st.sampled_from(["name", "node", "job_id", "agent_id", "status", "tags", "passing_only"]),
    value=_not_string,
)
def test_a_service_query_of_wrong_types_is_refused(door: Door, field: str, value: Any) -> None:
    if value is None or (field == "tags" and value == []) or (field == "passing_only" and isinstance(value, bool)):
        return  # null is no filter, [] no tags, a boolean is what passing_only takes
    if field == "tags" and isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = [1, *value]
    query = json.dumps({field: value})
    for call, request in (
        (door.cluster.ListServices, cluster_pb2.ListServicesRequest(query_json=query)),
        (door.cluster.ResolveService, cluster_pb2.ResolveServiceRequest(name="agent-api", query_json=query)),
    ):
        assert refused(door, call, request).details().startswith(f"query_json.{field} must be ")


@FUZZ
@given(
    where=st.sampled_from(["nodes", "deployment", "policies", "node", "update", "count", "node_id", "config"]),
    value=_not_object,
)
def test_a_manifest_of_wrong_types_is_refused(door: Door, where: str, value: Any) -> None:
    """Lists, objects, strings and numbers where another of them belongs, at each level of a manifest."""
    node = dict(V1["nodes"][0])
    manifest: dict[str, Any] = {**V1, "deployment": {"key": "typed"}, "nodes": [node]}
    if where in ("nodes", "deployment", "policies"):
        manifest[where] = value
    elif where == "node":
        manifest["nodes"] = [value]
    elif where == "update":
        manifest["policies"] = {"update": value}
    else:
        node[where] = value
    if where == "count" and isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return  # a count is a positive integer
    if where == "node_id" and isinstance(value, str) and value.strip():
        return  # a node id is a non-blank string
    refused(door, door.jobs.DeployJob, job_pb2.DeployJobRequest(manifest_json=json.dumps(manifest)))


@FUZZ
@given(value=_not_object | st.just({"strategy": 5}) | st.just({"max_parallel": "2"}))
def test_update_policy_overrides_of_wrong_types_are_refused(door: Door, value: Any) -> None:
    if value is None:
        return  # JSON null reads as no override object: refused below as any non-object is
    manifest = json.dumps({**V1, "deployment": {"key": "typed"}})
    request = job_pb2.DeployJobRequest(manifest_json=manifest, update_policy_json=json.dumps(value))
    refused(door, door.jobs.DeployJob, request)


# ---- huge strings -----------------------------------------------------------------------------------------------


def test_huge_strings_in_any_field_are_refused_in_one_short_line(door: Door) -> None:
    """A megabyte id, key, name, reason, tag or version: refused with details a client can take (a reply header
    of a megabyte would reach it as RESOURCE_EXHAUSTED), cut to MAX_DETAIL_BYTES."""
    huge = "x" * HUGE
    manifest = {**V1, "deployment": {"key": "huge"}}
    calls = [
        *id_fields(door, huge),
        (door.jobs.DeployJob, job_pb2.DeployJobRequest(manifest_json=json.dumps(V1), deployment_key=huge)),
        (door.jobs.DeployJob, job_pb2.DeployJobRequest(manifest_json=json.dumps({**V1, "job_name": huge}))),
        (
            door.jobs.DeployJob,
            job_pb2.DeployJobRequest(
                manifest_json=json.dumps({**manifest, "nodes": [{**V1["nodes"][0], "node_id": huge}]})
            ),
        ),
        (
            door.jobs.DeployJob,
            job_pb2.DeployJobRequest(
                manifest_json=json.dumps(
                    {
                        **manifest,
                        "nodes": [{**V1["nodes"][0], "agent_type": 7, "x": huge}],
                        "edges": [{"from_node": huge, "to_node": huge}],
                    }
                )
            ),
        ),
        (door.jobs.PauseDeployment, job_pb2.DeploymentActionRequest(id_or_key="agent-api", reason=huge)),
        (door.jobs.RollbackDeployment, job_pb2.RollbackDeploymentRequest(id_or_key="agent-api", tag=huge)),
        (door.jobs.RollbackDeployment, job_pb2.RollbackDeploymentRequest(id_or_key="agent-api", version=huge)),
        (door.jobs.DeployJob, job_pb2.DeployJobRequest(manifest_json=json.dumps(manifest), payloads={huge: b"x"})),
        (
            door.cluster.ResolveService,
            cluster_pb2.ResolveServiceRequest(name="a", query_json=json.dumps({"name": 1, "x": huge})),
        ),
    ]
    for call, request in calls:
        error = refused(door, call, request)
        assert len(error.details().encode()) <= MAX_DETAIL_BYTES


def test_details_are_one_line_cut_to_their_limit() -> None:
    message = "deployment " + "é\n" * HUGE + " was not found"

    shown = detail(message)

    assert "\n" not in shown and shown.startswith("deployment é\\né")
    assert len(shown.encode()) <= MAX_DETAIL_BYTES
    assert shown.endswith(f"... ({len(message) + HUGE:,} characters in all)")


# ---- deep nesting, NaN and Infinity -----------------------------------------------------------------------------


@FUZZ
@given(
    text=st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", '"\\ud800"', "[" * 100_000, "9" * 5000])
    | st.builds(lambda levels: json.dumps(nested(levels)), st.integers(65, 400))
    | st.builds(lambda value: json.dumps({"k": [value]}), st.sampled_from([float("nan"), float("inf"), 10**400]))
)
def test_json_nested_too_deep_or_not_finite_is_refused_in_any_json_field(door: Door, text: str) -> None:
    for call, request in json_fields(door, text):
        error = refused(door, call, request)
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert any(field in error.details() for field in ("manifest_json: ", "update_policy_json: ", "query_json: "))


@FUZZ
@given(value=awkward_values)
def test_fuzz_awkward_values_in_any_json_field_are_read_or_refused_in_one_line(door: Door, value: Any) -> None:
    """Whatever a JSON field holds, the answer is a reply or one line; a refusal writes nothing."""
    for call, request in json_fields(door, json.dumps(value)):
        before = door.snapshot()
        try:
            call(request, timeout=10)
        except grpc.RpcError as error:
            assert error.code() in REFUSED, (error.code(), error.details())
            assert "\n" not in error.details()
            assert door.snapshot() == before


# ---- odd ids and keys -------------------------------------------------------------------------------------------

_odd_ids = (
    st.sampled_from(["*", ":", "?", "[a-z]", "a b", " ", "\n", "agent-api\n", "agent-api*", "dep_*", "job_*_1"])
    | st.sampled_from(["\x1b[31mred", "\u202e", "\x00", "a\tb", "é" * 300, "dep_agent-api_1 ", "JOB_agent-api_1"])
    | st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=12)
)


@FUZZ
@given(text=_odd_ids)
def test_odd_ids_are_not_found_in_one_line_and_write_nothing(door: Door, text: str) -> None:
    """No id or key a lookup names is a pattern: `*` finds nothing, nor does an id with a line break."""
    if text.strip() in ("agent-api", "dep_agent-api_1", "job_agent-api_1"):
        return  # the one deployment there is
    for call, request in id_fields(door, text):
        error = refused(door, call, request)
        if call not in (door.jobs.PromoteDeployment, door.jobs.CancelJob):
            assert error.code() is grpc.StatusCode.NOT_FOUND, error.details()
    resolve = door.cluster.ResolveService
    if text.strip():
        services = resolve(cluster_pb2.ResolveServiceRequest(name=text), timeout=10)
        assert json.loads(services.result_json)["count"] == 0
    else:
        assert refused(door, resolve, cluster_pb2.ResolveServiceRequest(name=text)).details() == "name is required"


@pytest.mark.parametrize("key", ["*", "a:b", "a b", "[x]", "dep_*", "é"])
def test_a_key_of_glob_and_separator_characters_is_data(door: Door, key: str) -> None:
    """Deployed, it is found by itself only; the key it resembles as a pattern is untouched."""
    manifest = json.dumps({**V1, "deployment": {"key": key}})
    door.jobs.DeployJob(job_pb2.DeployJobRequest(manifest_json=manifest), timeout=10)

    found = json.loads(door.jobs.GetDeployment(job_pb2.GetDeploymentRequest(id_or_key=key), timeout=10).result_json)
    listed = door.jobs.ListDeployments(
        job_pb2.ListDeploymentsRequest(query_json=json.dumps({"deployment_key": key})), timeout=10
    )
    other = door.jobs.GetDeployment(job_pb2.GetDeploymentRequest(id_or_key="agent-api"), timeout=10)

    assert found["deployment_key"] == key
    assert [d["deployment_key"] for d in json.loads(listed.result_json)["data"]] == [key]
    assert json.loads(other.result_json)["versions_total"] == 1


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("a\nb", "the call's key must not hold control characters"),
        ("\x1b[2J", "the call's key must not hold control characters"),
        ("k" * 101, "the call's key is longer than 100 characters (101)"),
    ],
)
def test_a_key_no_deployment_may_have_is_refused_and_writes_nothing(door: Door, key: str, problem: str) -> None:
    request = job_pb2.DeployJobRequest(manifest_json=json.dumps(V1), deployment_key=key, payloads={"a": b"1"})

    assert refused(door, door.jobs.DeployJob, request).details() == problem


# ---- version strings --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["-1", "abc", "9" * 20, "0", "01", "1.0", "1e3", "+1", "٣", "1 2"])
def test_a_rollback_to_what_is_no_version_number_is_refused_naming_it(door: Door, version: str) -> None:
    request = job_pb2.RollbackDeploymentRequest(id_or_key="agent-api", version=version)

    error = refused(door, door.jobs.RollbackDeployment, request)

    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == f'version must be a version number (1, 2, ...), not "{shown(version.strip())}"'


@pytest.mark.parametrize("version", ["", " ", "7", "9" * 19])
def test_a_rollback_to_a_blank_or_unknown_version_number_finds_no_target(door: Door, version: str) -> None:
    request = job_pb2.RollbackDeploymentRequest(id_or_key="agent-api", version=version)

    assert refused(door, door.jobs.RollbackDeployment, request).details() == (
        "no rollback target found for deployment agent-api"
    )


wire_text = odd_text.filter(lambda text: not any(0xD800 <= ord(ch) <= 0xDFFF for ch in text))
"""Odd text a protobuf string can carry (no lone surrogate: no client can encode one)."""


# ---- payload paths ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payloads", "message"),
    [
        ({"a": b"1", "a/b": b"2"}, "Unsafe payload path: a (a file, and a directory of other paths)"),
        ({"a": b"1", "./a": b"2"}, "Unsafe payload path: a (the same file as ./a)"),
        ({"d//b": b"1", "d/b": b"2"}, "Unsafe payload path: d/b (the same file as d//b)"),
        ({"d/": b"1"}, "Unsafe payload path: d/ (a directory, not a file)"),
        ({"line\nbreak": b"1"}, 'Unsafe payload path: "line\\nbreak" (holds a control character)'),
        ({"..": b"1"}, "Unsafe payload path: .."),
        ({"/etc/passwd": b"1"}, "Unsafe payload path: /etc/passwd"),
        ({"a/../../b": b"1"}, "Unsafe payload path: a/../../b"),
        ({"nul\0": b"1"}, 'Unsafe payload path: "nul\\u0000" (holds a NUL byte)'),
    ],
    ids=[
        "file-and-directory",
        "same-file",
        "same-file-slashes",
        "directory",
        "newline",
        "dots",
        "absolute",
        "up",
        "nul",
    ],
)
def test_payload_keys_no_worker_should_write_are_refused_and_write_nothing(
    door: Door, payloads: dict[str, bytes], message: str
) -> None:
    request = job_pb2.DeployJobRequest(
        manifest_json=json.dumps({**V1, "deployment": {"key": "paths"}}), payloads=payloads
    )

    assert refused(door, door.jobs.DeployJob, request).details() == message


def test_a_bundle_with_a_manifest_the_core_refuses_is_not_uploaded(door: Door) -> None:
    """Bad input writes nothing, not even a bundle that would expire."""
    request = job_pb2.DeployJobRequest(manifest_json=json.dumps({"nodes": []}), payloads={"a.json": b"{}"})

    assert refused(door, door.jobs.DeployJob, request).code() is grpc.StatusCode.INVALID_ARGUMENT


@FUZZ
@given(names=st.lists(st.sampled_from(["...", ".", "..", "a", "é", " ", "-", "~"]) | wire_text, min_size=1, max_size=4))
def test_fuzz_payload_keys_are_deployed_or_refused_writing_nothing(door: Door, names: list[str]) -> None:
    path = "/".join(names)
    request = job_pb2.DeployJobRequest(
        manifest_json=json.dumps({**V1, "deployment": {"key": "fz"}}), payloads={path: b"x"}
    )
    before = door.snapshot()
    try:
        door.jobs.DeployJob(request, timeout=10)
    except grpc.RpcError as error:
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, error.details()
        assert error.details().startswith("Unsafe payload path: ") and "\n" not in error.details()
        assert door.snapshot() == before


# ---- requests that are not the method's message at all ------------------------------------------------------------

UNDECODABLE = {
    "not protobuf": b"\xff\xff\xff\xff",
    "a string field that is not UTF-8": b"\x0a\x01\xff",  # field 1, length 1: a lone byte 0xff
    "a truncated field": b"\x0a\x05ab",
}


@pytest.mark.parametrize("method", ["JobService/GetDeployment", "JobService/DeployJob", "ClusterService/ListServices"])
@pytest.mark.parametrize("raw", list(UNDECODABLE.values()), ids=list(UNDECODABLE))
def test_a_request_that_does_not_decode_is_refused_as_bad_input_naming_the_method(
    door: Door, method: str, raw: bytes
) -> None:
    service, name = method.split("/")
    path = f"/mirrorneuron.{'job' if service == 'JobService' else 'cluster'}.v1.{method}"
    call = door.channel.unary_unary(path, request_serializer=None, response_deserializer=None)

    error = refused(door, call, raw)

    assert (error.code(), error.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        f"the request is not a valid {name} request",
    )
