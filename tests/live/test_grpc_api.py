"""MirrorNeuron's JobService over our controller, called through the official SDK client and `mn` CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backends.live.controller import arguments, results, status_code
from backends.protocol.bundles import bundle_fingerprint
from backends.protocol.sizes import MAX_BUNDLE_BYTES, MAX_MANIFEST_BYTES
from mn_deploy_core.errors import ConflictError, NotFoundError, RefusedError
from tests.awkward import awkward_values, unfit
from tests.backends import samples
from tests.live.conftest import Api
from tests.scripted import service_manifest

V1 = service_manifest("agent:1")
V2 = service_manifest("agent:2")


def deploy(api: Api, manifest: dict[str, Any], payloads: dict[str, bytes] | None = None, **policy: Any) -> Any:
    return json.loads(api.client.deploy_job(json.dumps(manifest), payloads or {}, update_policy=policy or None))


def get(api: Api, id_or_key: str) -> Any:
    return json.loads(api.client.get_deployment(id_or_key))


def rpc_error(call: Any, *args: Any, **kwargs: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(*args, **kwargs)
    return caught.value


def stable(api: Api, manifest: dict[str, Any], payloads: dict[str, bytes] | None = None) -> Any:
    result = deploy(api, manifest, payloads)
    api.settle()
    return result


# ---- deploy, get, list -------------------------------------------------------------------------


def test_deploy_of_a_new_key_answers_deployment_version_job_and_status(api: Api) -> None:
    result = deploy(api, V1, {"input.json": b"{}"})

    assert set(result) == {"deployment", "version", "job_id", "status"}
    assert result["status"] == "running"
    assert result["job_id"] == "job_agent-api_1"
    assert result["deployment"]["deployment_id"] == "dep_agent-api_1"
    assert result["deployment"]["description"] == "Deployment is running"
    assert result["version"]["version"] == "1"
    assert result["version"]["job_id"] == "job_agent-api_1"
    fingerprint = result["version"]["manifest_ref"]["bundle_fingerprint"]
    assert fingerprint == bundle_fingerprint({"input.json": b"{}"})
    assert api.bundles.get(fingerprint) == {"input.json": b"{}"}


def test_responses_carry_the_interface_version(api: Api) -> None:
    from mn_sdk.proto import job_pb2

    deploy(api, V1)
    response = api.client.job_stub.GetDeployment(job_pb2.GetDeploymentRequest(id_or_key="agent-api", version=1))

    assert response.version == 1
    assert json.loads(response.result_json)["version"] == 1


def test_get_by_id_and_by_key_answers_the_record_with_its_versions(api: Api) -> None:
    stable(api, V1)

    by_key = get(api, "agent-api")

    assert by_key == get(api, "dep_agent-api_1")
    assert by_key["status"] == "successful"
    assert by_key["stable_version"] == "1"
    assert [(v["version"], v["stable"]) for v in by_key["versions"]] == [("1", True)]
    assert by_key["version"] == 1  # MirrorNeuron's envelope, added where the result has no `version`


def test_list_filters_by_key_and_status(api: Api) -> None:
    stable(api, V1)
    deploy(api, service_manifest(key="billing"))

    everything = json.loads(api.client.list_deployments())
    by_key = json.loads(api.client.list_deployments(deployment_key="billing"))
    successful = json.loads(api.client.list_deployments(status="successful"))
    none = json.loads(api.client.list_deployments(deployment_key="billing", status="successful"))

    assert sorted(d["deployment_key"] for d in everything["data"]) == ["agent-api", "billing"]
    assert [d["deployment_key"] for d in by_key["data"]] == ["billing"]
    assert [d["deployment_key"] for d in successful["data"]] == ["agent-api"]
    assert none["data"] == []
    assert everything["version"] == 1


def test_a_deploy_reply_carries_the_manifest_once(api: Api) -> None:
    result = deploy(api, V1)

    assert result["deployment"]["target_manifest"]["deployment"] == V1["deployment"]
    assert "manifest" not in result["version"]


def test_a_get_lists_the_newest_versions_as_summaries_and_how_many_there_are(api: Api) -> None:
    """A version's full manifest is its deployment's `target_manifest`, by the id the summary names."""
    stable(api, V1)
    stable(api, V2)

    record = get(api, "agent-api")

    assert [v["version"] for v in record["versions"]] == ["1", "2"]
    assert record["versions_total"] == 2
    assert all("manifest" not in v for v in record["versions"])
    first = get(api, record["versions"][0]["deployment_id"])
    assert first["target_manifest"]["nodes"] == V1["nodes"]


def test_a_get_of_a_key_with_a_long_history_shows_its_newest_hundred_versions() -> None:
    record = samples.deployment("a", 150)
    versions = [samples.version("a", str(n)) for n in range(1, 151)]

    shown = results.with_versions(record, versions)

    assert [v["version"] for v in shown["versions"]] == [str(n) for n in range(51, 151)]
    assert shown["versions_total"] == 150


def test_a_list_is_a_page_of_records_without_manifests_with_the_id_to_go_on_after(api: Api) -> None:
    from mn_sdk.proto import job_pb2

    for key in ("a", "b", "c"):
        deploy(api, service_manifest(key=key))

    def page(**query: Any) -> Any:
        request = job_pb2.ListDeploymentsRequest(query_json=json.dumps(query), version=1)
        return json.loads(api.client.job_stub.ListDeployments(request).result_json)

    first = page(limit=2)
    assert [d["deployment_key"] for d in first["data"]] == ["a", "b"]
    assert all("target_manifest" not in d and "events" not in d for d in first["data"])
    last = page(limit=2, after=first["next"])
    assert ([d["deployment_key"] for d in last["data"]], last["next"]) == (["c"], None)
    error = rpc_error(page, limit=0)
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "query_json.limit must be an integer from 1 to 1000",
    )


def test_a_manifest_or_bundle_over_its_limit_is_refused_naming_it_and_nothing_is_applied(api: Api) -> None:
    big_manifest = {**V1, "nodes": [{**V1["nodes"][0], "config": {"blob": "x" * MAX_MANIFEST_BYTES}}]}
    error = rpc_error(api.client.deploy_job, json.dumps(big_manifest), {})
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        f"the manifest is {len(json.dumps(big_manifest)):,} bytes; at most 1,048,576 bytes (1 MiB) are accepted",
    )
    payloads = {"a.bin": b"\0" * (MAX_BUNDLE_BYTES // 2), "b.bin": b"\0" * (MAX_BUNDLE_BYTES // 2 + 1)}
    error = rpc_error(api.client.deploy_job, json.dumps(V1), payloads)
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "the payloads are 67,108,865 bytes in all; at most 67,108,864 bytes (64 MiB) are accepted",
    )
    assert json.loads(api.client.list_deployments())["data"] == []


# ---- updates and operator actions --------------------------------------------------------------


def test_update_of_an_existing_key_rolls_and_succeeds_once_instances_are_healthy(api: Api) -> None:
    stable(api, V1)

    update = json.loads(api.client.update_deployment("agent-api", json.dumps(V2), {}))

    assert update["status"] == "running"
    assert update["deployment"]["mode"] == "agent_level"
    assert update["version"]["version"] == "2"
    api.settle()
    record = get(api, "agent-api")
    assert (record["status"], record["current_version"], record["stable_version"]) == ("successful", "2", "2")


def test_deploy_of_an_existing_key_updates_it(api: Api) -> None:
    stable(api, V1)

    result = deploy(api, V2)

    assert result["deployment"]["deployment_id"] == "dep_agent-api_2"
    assert result["deployment"]["mode"] == "agent_level"


def test_redeploying_the_running_spec_is_a_noop_answered_without_status(api: Api) -> None:
    stable(api, V1)

    result = deploy(api, V1)

    assert set(result) == {"deployment", "version", "job_id"}
    assert result["deployment"]["description"] == "Deployment contained no runtime changes"


def test_the_sdk_policy_envelope_is_not_a_policy_field(api: Api) -> None:
    from mn_sdk import deployment_policy

    policy = deployment_policy(strategy="canary", canary=1, max_parallel=2)
    result = json.loads(api.client.deploy_job(json.dumps(V1), {}, update_policy=policy))

    assert "version" not in result["deployment"]["policy"]
    assert result["deployment"]["policy"]["strategy"] == "canary"
    assert result["deployment"]["policy"]["max_parallel"] == 2


def test_canary_awaits_promotion_then_promote_rolls_the_rest(api: Api) -> None:
    stable(api, V1)
    deploy(api, V2, strategy="canary", canary=1)
    api.settle()
    assert get(api, "agent-api")["status"] == "awaiting_promotion"

    promoted = json.loads(api.client.promote_deployment("agent-api"))

    assert set(promoted) == {"deployment", "version", "job_id", "status"}
    assert promoted["status"] == "running"
    api.settle()
    assert get(api, "agent-api")["status"] == "successful"


def test_rollback_redeploys_the_previous_stable_version_with_its_payloads(api: Api) -> None:
    stable(api, V1, {"input.json": b"one"})
    stable(api, V2, {"input.json": b"two"})

    result = json.loads(api.client.rollback_deployment("agent-api", reason="bad release"))

    assert result["version"]["version"] == "3"
    assert result["deployment"]["rollback"] == {"from_version": "2", "to_version": "1", "reason": "bad release"}
    fingerprint = result["version"]["manifest_ref"]["bundle_fingerprint"]
    assert api.bundles.get(fingerprint) == {"input.json": b"one"}
    api.settle()
    versions = {v["version"]: v for v in get(api, "agent-api")["versions"]}
    assert versions["3"]["stable"] is True
    assert versions["3"]["manifest_ref"]["bundle_fingerprint"] == fingerprint


def test_rollback_to_a_named_version(api: Api) -> None:
    stable(api, V1)
    stable(api, V2)
    stable(api, service_manifest("agent:3"))

    result = json.loads(api.client.rollback_deployment("agent-api", version="1"))

    assert result["deployment"]["rollback"]["to_version"] == "1"


def test_pause_resume_and_fail_answer_the_record(api: Api) -> None:
    stable(api, V1)
    deploy(api, V2)

    paused = json.loads(api.client.pause_deployment("agent-api", reason="hold on"))
    resumed = json.loads(api.client.resume_deployment("agent-api"))
    failed = json.loads(api.client.fail_deployment("agent-api", reason="bad metrics"))

    assert (paused["deployment_id"], paused["status"], paused["version"]) == ("dep_agent-api_2", "paused", 1)
    assert resumed["status"] == "running"
    assert failed["status"] == "failed"
    assert failed["description"] == "Deployment marked as failed"
    assert failed["events"][-1]["reason"] == "bad metrics"


def test_a_blank_reason_keeps_the_default_text(api: Api) -> None:
    deploy(api, V1)

    failed = json.loads(api.client.fail_deployment("agent-api", reason=""))

    assert failed["events"][-1]["reason"] == "Deployment marked as failed"


# ---- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method", ["get_deployment", "promote_deployment", "rollback_deployment", "pause_deployment", "fail_deployment"]
)
def test_unknown_ids_and_keys_are_not_found(api: Api, method: str) -> None:
    error = rpc_error(getattr(api.client, method), "no-such-app")

    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert error.details() == "deployment no-such-app was not found"


def test_a_bad_manifest_is_invalid_and_lists_every_problem(api: Api) -> None:
    bad = service_manifest(update={"strategy": "teleport", "max_parallel": -1, "auto_promote": "yes"})

    error = rpc_error(deploy, api, bad)

    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == (
        'policies.update.strategy has unsupported value "teleport"; '
        "policies.update.max_parallel must be a non-negative integer; "
        "policies.update.auto_promote must be a boolean"
    )
    assert json.loads(api.client.list_deployments())["data"] == []


def test_invalid_override_json_is_invalid_rather_than_ignored(api: Api) -> None:
    from mn_sdk.proto import job_pb2

    request = job_pb2.DeployJobRequest(manifest_json=json.dumps(V1), update_policy_json="[1]", version=1)
    error = rpc_error(api.client.job_stub.DeployJob, request)

    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "update_policy_json must be a JSON object"


def test_a_manifest_that_is_not_json_is_invalid(api: Api) -> None:
    error = rpc_error(api.client.deploy_job, "{nodes", {})

    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("manifest_json is not valid JSON: ")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[" * 100_000, "nested more than 64 levels deep"),  # json.loads alone raises RecursionError
        ('{"nodes": [], "x": NaN}', "holds a number that is not finite (NaN, Infinity, or over 1.8e308 in size)"),
    ],
)
def test_json_the_core_refuses_is_invalid_in_one_line(api: Api, text: str, problem: str) -> None:
    from mn_sdk.proto import job_pb2

    bad_manifest = rpc_error(api.client.deploy_job, text, {})
    request = job_pb2.DeployJobRequest(manifest_json=json.dumps(V1), update_policy_json=text, version=1)
    bad_override = rpc_error(api.client.job_stub.DeployJob, request)

    invalid = grpc.StatusCode.INVALID_ARGUMENT
    assert (bad_manifest.code(), bad_manifest.details()) == (invalid, f"manifest_json: {problem}")
    assert (bad_override.code(), bad_override.details()) == (invalid, f"update_policy_json: {problem}")
    assert json.loads(api.client.list_deployments())["data"] == []


def test_refused_actions_are_invalid_with_the_reason(api: Api) -> None:
    stable(api, V1)

    terminal = rpc_error(api.client.pause_deployment, "agent-api")
    deploy(api, V2)
    not_awaiting = rpc_error(api.client.promote_deployment, "agent-api")

    assert terminal.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert terminal.details() == "deployment dep_agent-api_1 is successful; it can't be paused"
    assert not_awaiting.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert not_awaiting.details() == "deployment is running, expected awaiting_promotion"


def test_rollback_without_a_target_is_invalid(api: Api) -> None:
    stable(api, V1)

    by_default = rpc_error(api.client.rollback_deployment, "agent-api")
    by_tag = rpc_error(api.client.rollback_deployment, "agent-api", tag="release-1")

    for error in (by_default, by_tag):
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert error.details() == "no rollback target found for deployment agent-api"


@pytest.mark.parametrize("path", ["../escape.json", "/etc/passwd", "nested/../../escape.json", "", "."])
def test_unsafe_payload_paths_are_refused_before_anything_is_written(api: Api, path: str) -> None:
    error = rpc_error(deploy, api, V1, {"input.json": b"{}", path: b"x"})

    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == f"Unsafe payload path: {path}"
    assert json.loads(api.client.list_deployments())["data"] == []


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("model\0.bin", '"model\\u0000.bin" (holds a NUL byte)'),
        ("n" * 256, f"{'n' * 97}... (has a name longer than 255 bytes)"),
    ],
    ids=["nul", "long-name"],
)
def test_payload_paths_no_worker_could_write_are_refused_before_anything_is_written(
    api: Api, path: str, why: str
) -> None:
    """Let through, they would fail every instance on its worker, and the deployment at its healthy deadline."""
    error = rpc_error(deploy, api, V1, {"input.json": b"{}", path: b"x"})

    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, f"Unsafe payload path: {why}")
    assert json.loads(api.client.list_deployments())["data"] == []


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=awkward_values, whole=st.booleans())
def test_fuzz_a_manifest_is_deployed_or_invalid_in_one_line(api: Api, value: Any, whole: bool) -> None:
    """Never UNKNOWN (an error the service did not expect); nested too deep or not finite is refused as such."""
    document = value if whole else {**V1, "nodes": [{**V1["nodes"][0], "config": {"odd": value}}]}
    try:
        api.client.deploy_job(json.dumps(document), {})
    except grpc.RpcError as error:
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, error.details()
        assert "\n" not in error.details()
        assert not unfit(document) or error.details().startswith("manifest_json: ")
    else:
        assert not unfit(document)


@settings(max_examples=300, deadline=None)
@given(text=st.text() | st.builds(lambda n: "[" * n, st.integers(0, 200_000)) | st.builds(json.dumps, awkward_values))
def test_fuzz_request_json_fields_are_read_or_invalid(text: str) -> None:
    for read in (arguments.manifest, arguments.update_policy, arguments.list_query):
        try:
            read(text)
        except arguments.InvalidRequestError as error:
            assert "\n" not in error.message


def test_job_methods_are_unimplemented(api: Api) -> None:
    error = rpc_error(api.client.submit_job, json.dumps(V1), {})

    assert error.code() is grpc.StatusCode.UNIMPLEMENTED


def test_calls_wait_for_the_controller_lock(api: Api) -> None:
    from mn_sdk import Client

    impatient = Client(target=api.target, timeout=0.2)
    with api.lock:
        error = rpc_error(impatient.get_deployment, "agent-api")
    impatient.channel.close()

    assert error.code() is grpc.StatusCode.DEADLINE_EXCEEDED


def test_error_classes_map_to_status_codes() -> None:
    assert status_code(NotFoundError("x")) is grpc.StatusCode.NOT_FOUND
    assert status_code(RefusedError("no")) is grpc.StatusCode.INVALID_ARGUMENT
    assert status_code(ConflictError("dep_x_1", 1, 2)) is grpc.StatusCode.ABORTED


# ---- the official CLI --------------------------------------------------------------------------


def mn(api: Api, *args: str) -> subprocess.CompletedProcess[str]:
    """`mn` from this venv, pointed at our server; plain output so lines can be matched."""
    env = {**os.environ, "MN_GRPC_TARGET": api.target, "MN_CLI_OUTPUT": "plain", "NO_COLOR": "1"}
    cli = Path(sys.executable).with_name("mn")
    return subprocess.run([str(cli), *args], env=env, capture_output=True, text=True, timeout=60, check=False)


def test_cli_status_exits_0_and_2_for_an_unknown_key(api: Api) -> None:
    stable(api, V1)

    found = mn(api, "deployment", "status", "agent-api")
    missing = mn(api, "deployment", "status", "no-such-app")

    assert found.returncode == 0, found.stdout + found.stderr
    assert json.loads(found.stdout)["deployment_key"] == "agent-api"
    assert missing.returncode == 2
    assert "MN_NOT_FOUND" in missing.stdout + missing.stderr


def test_cli_deploys_a_bundle_with_its_payloads(api: Api, tmp_path: Path) -> None:
    (tmp_path / "payloads" / "nested").mkdir(parents=True)
    (tmp_path / "manifest.json").write_text(json.dumps(V1))
    (tmp_path / "payloads" / "nested" / "input.json").write_text("{}")

    done = mn(api, "deployment", "deploy", str(tmp_path), "--key", "agent-api", "--strategy", "canary", "--canary", "1")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "Deployment deploy successful." in done.stdout
    assert "Status: running" in done.stdout
    fingerprint = bundle_fingerprint({"nested/input.json": b"{}"})
    assert api.bundles.get(fingerprint) == {"nested/input.json": b"{}"}
    assert get(api, "agent-api")["policy"]["strategy"] == "canary"


def test_r15_cli_deploy_of_the_hello_bundle_keeps_the_manifests_auto_revert(api: Api) -> None:
    bundle = Path(__file__).resolve().parents[2] / "examples" / "bundles" / "hello" / "v1.json"
    assert json.loads(bundle.read_text())["policies"]["update"]["auto_revert"] is True

    done = mn(api, "deployment", "deploy", str(bundle))

    assert done.returncode == 0, done.stdout + done.stderr
    record = get(api, "hello")
    assert record["policy"]["auto_revert"] is True
    assert record["policy"]["min_healthy_ms"] == 1000
    first = record["events"][0]
    assert first["type"] == "deployment_policy_overrides_ignored"
    assert first["fields"] == ["auto_revert", "max_parallel", "strategy"]
    assert record["events"][1]["type"] == "deployment_created"
