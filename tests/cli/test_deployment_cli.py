"""`mn-deploy deployment ...` against a real gRPC server over the scripted world: every command in plain
text and JSON, and every refusal as one line on stderr with exit 2 that changes nothing."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import grpc
import pytest
from click.testing import Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backends.loopback import free_port
from backends.protocol import job_pb2, job_pb2_grpc
from backends.protocol.bundles import bundle_fingerprint
from mn_deploy.grpc_client import ApiError, DeploymentApi
from tests.awkward import awkward_values, unfit
from tests.backends import samples
from tests.cli.conftest import Cli, Stack, serving, write_bundle
from tests.scripted import service_manifest

V1 = service_manifest("agent:1")
V2 = service_manifest("agent:2")


def ok(result: Result) -> list[str]:
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    return result.stdout.splitlines()


def one_line_error(result: Result, message: str, code: int = 2) -> None:
    """One line on stderr, nothing on stdout, the exit code, and no traceback."""
    assert (result.exit_code, result.stderr, result.stdout) == (code, f"error: {message}\n", "")
    assert isinstance(result.exception, SystemExit)


def deploy(stack: Stack, tmp_path: Path, manifest: dict[str, Any], *flags: str) -> Result:
    bundle = write_bundle(tmp_path / f"bundle-{len(list(tmp_path.iterdir()))}", manifest)
    return stack.cli("deploy", str(bundle), *flags)


def stable(stack: Stack, tmp_path: Path, manifest: dict[str, Any], *flags: str) -> None:
    ok(deploy(stack, tmp_path, manifest, *flags))
    stack.settle()


def awaiting_canary(stack: Stack, tmp_path: Path) -> None:
    """V1 stable, V2 with one healthy canary awaiting promotion."""
    stable(stack, tmp_path, V1)
    ok(deploy(stack, tmp_path, V2, "--strategy", "canary", "--canary", "1"))
    stack.settle()
    assert stack.record("agent-api")["status"] == "awaiting_promotion"


# ---- deploy ------------------------------------------------------------------------------------


def test_deploy_sends_the_manifest_and_payloads_and_confirms(stack: Stack, tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "app", V1, {"input.json": b"{}", "nested/model.bin": b"\x00\x01"})

    lines = ok(stack.cli("deploy", str(bundle)))

    assert lines == [
        f"Bundle: {bundle}",
        "Deployment: dep_agent-api_1",
        "Key: agent-api",
        "Status: running",
        "Description: Deployment is running",
        "Version: 1",
        "Next: mn-deploy deployment watch agent-api",
    ]
    payloads = {"input.json": b"{}", "nested/model.bin": b"\x00\x01"}
    assert stack.bundles.get(bundle_fingerprint(payloads)) == payloads


def test_deploy_of_a_manifest_file_takes_the_payloads_beside_it(stack: Stack, tmp_path: Path) -> None:
    write_bundle(tmp_path / "app", V1, {"input.json": b"beside"})
    (tmp_path / "app" / "manifest.json").rename(tmp_path / "app" / "release.json")

    ok(stack.cli("deploy", str(tmp_path / "app" / "release.json")))

    assert stack.bundles.get(bundle_fingerprint({"input.json": b"beside"})) == {"input.json": b"beside"}


def test_without_flags_the_manifest_policy_is_kept(stack: Stack, tmp_path: Path) -> None:
    update = {"strategy": "canary", "canary": 2, "max_parallel": 3, "auto_revert": True, "min_healthy_ms": 500}
    stable(stack, tmp_path, service_manifest("agent:1", update=update))

    ok(deploy(stack, tmp_path, service_manifest("agent:2", update=update)))

    policy = stack.record("agent-api")["policy"]
    assert {name: policy[name] for name in update} == update


def test_only_the_flags_given_override_the_manifest(stack: Stack, tmp_path: Path) -> None:
    manifest = service_manifest(update={"strategy": "canary", "canary": 1, "auto_revert": True})

    ok(deploy(stack, tmp_path, manifest, "--max-parallel", "2", "--no-auto-revert", "--progress-deadline-ms", "900000"))

    policy = stack.record("agent-api")["policy"]
    assert (policy["strategy"], policy["canary"], policy["min_healthy_ms"]) == ("canary", 1, 1000)
    assert (policy["max_parallel"], policy["auto_revert"], policy["progress_deadline_ms"]) == (2, False, 900_000)


def test_deploy_under_another_key(stack: Stack, tmp_path: Path) -> None:
    lines = ok(deploy(stack, tmp_path, V1, "--key", "billing"))

    assert "Key: billing" in lines
    assert [stack.record("billing")["deployment_key"]] == ["billing"]
    assert len(stack.deployment_ids()) == 1


def test_deploy_json_is_the_api_result(stack: Stack, tmp_path: Path) -> None:
    result = json.loads(ok(deploy(stack, tmp_path, V1, "--json"))[0])

    assert set(result) == {"deployment", "version", "job_id", "status"}
    assert result["deployment"] == stack.record("agent-api")


def test_a_noop_deploy_confirms_success(stack: Stack, tmp_path: Path) -> None:
    stable(stack, tmp_path, V1)

    lines = ok(deploy(stack, tmp_path, V1))

    assert "Description: Deployment contained no runtime changes" in lines
    assert "Next: mn-deploy deployment history agent-api" in lines


# ---- list, status, history, events -------------------------------------------------------------


def test_list_is_one_line_per_deployment_and_filters(stack: Stack, tmp_path: Path) -> None:
    stable(stack, tmp_path, V1)
    ok(deploy(stack, tmp_path, V1, "--key", "billing"))

    everything = ok(stack.cli("list"))
    running = ok(stack.cli("list", "--status", "running"))
    billing = ok(stack.cli("list", "--key", "billing", "--json"))

    billing_id = stack.record("billing")["deployment_id"]
    header = "# Deployment: deployment | key | status | version | stable | updated | description"
    assert everything[0] == running[0] == header
    assert [line.split(" | ")[:4] for line in everything[1:]] == [
        ["Deployment: dep_agent-api_1", "agent-api", "successful", "1"],
        [f"Deployment: {billing_id}", "billing", "running", "1"],
    ]
    assert [line.split(" | ")[0] for line in running[1:]] == [f"Deployment: {billing_id}"]
    summary = {k: v for k, v in stack.record("billing").items() if k not in ("target_manifest", "events")}
    assert json.loads(billing[0]) == {"data": [summary], "version": 1}


def test_list_reads_every_page(stack: Stack) -> None:
    """The controller answers a page at a time (100 records); the list shows them all, oldest first."""
    with stack.lock:
        for n in range(105):
            stack.world.controller.deploy(service_manifest(key=f"k{n:03}", count=1), now=0.0)

    lines = ok(stack.cli("list"))
    listed = json.loads(ok(stack.cli("list", "--json"))[0])["data"]

    assert len(lines) == 1 + len(listed) == 1 + 105  # the header line, then a line each
    assert [row["deployment_id"] for row in listed] == stack.deployment_ids()


def test_list_is_oldest_first_by_creation_not_by_id(stack: Stack) -> None:
    """Ids sort as text (`dep_x_17` before `dep_x_5`); the list sorts by the deployment number, which a
    deployment is given when it is created, in the table and in the JSON alike."""
    with stack.lock:
        for n in range(1, 18):
            stack.world.controller.deploy(service_manifest(f"agent:{n}", key="x", count=1), now=float(n))

    rows = ok(stack.cli("list"))[1:]
    listed = json.loads(ok(stack.cli("list", "--json"))[0])["data"]

    oldest_first = [f"dep_x_{n}" for n in range(1, 18)]
    assert sorted(oldest_first).index("dep_x_17") < sorted(oldest_first).index("dep_x_5")  # as text, 17 first
    assert [row.removeprefix("Deployment: ").split(" | ")[0] for row in rows] == oldest_first
    assert [record["deployment_id"] for record in listed] == oldest_first


def test_list_of_nothing_prints_nothing(stack: Stack) -> None:
    assert ok(stack.cli("list")) == []


def test_status_of_a_canary_shows_progress_per_role_and_says_promote(stack: Stack, tmp_path: Path) -> None:
    awaiting_canary(stack, tmp_path)

    lines = ok(stack.cli("status", "agent-api"))

    fields = dict(line.split(": ", 1) for line in lines if not line.startswith(("Event", "Instance", "#")))
    assert fields == {
        "Deployment": "dep_agent-api_2",
        "Key": "agent-api",
        "Status": "awaiting_promotion",
        "Description": "Deployment is running but requires manual promotion",
        "Strategy": "canary (agent_level)",
        "Current version": "1",
        "Stable version": "1",
        "Target version": "2",
        "Canary": "1/1 healthy, 1 placed",
        "Primary": "0/2 healthy, 0 placed",
        "Progress deadline": "not enforced while awaiting promotion",
        "Updated": stack.record("agent-api")["updated_at"],
        "Next": "mn-deploy deployment promote agent-api",
    }
    assert "# Instance: agent | version | role | node | pid | port | state | restarts | since" in lines
    instances = [line for line in lines if line.startswith("Instance")]
    rows = [re.sub(r"\d+s$", "AGE", line) for line in instances[:-1]]
    assert rows == [  # every instance the key runs: the old primaries beside the canary
        "Instance: worker-0 | 1 | primary | - | - | - | healthy | 0 | AGE",
        "Instance: worker-0 | 2 | canary | - | - | - | healthy | 0 | AGE",
        "Instance: worker-1 | 1 | primary | - | - | - | healthy | 0 | AGE",
        "Instance: worker-2 | 1 | primary | - | - | - | healthy | 0 | AGE",
    ]
    assert instances[-1] == "Instances: 4 instances"


def test_status_shows_the_last_events_and_the_time_left(stack: Stack, tmp_path: Path) -> None:
    ok(deploy(stack, tmp_path, V1))

    lines = ok(stack.cli("status", "dep_agent-api_1"))

    events = [line for line in lines if line.startswith("Event: ")]
    assert len(events) == 4
    assert events[0].endswith("deployment_created job_id=job_agent-api_1, version=1")
    assert "Primary: 0/3 healthy, 3 placed" in lines
    deadline = next(line for line in lines if line.startswith("Progress deadline: "))
    assert re.fullmatch(r"Progress deadline: (10m 0s|9m \d+s) left", deadline)


def test_status_json_is_the_record_with_its_versions(stack: Stack, tmp_path: Path) -> None:
    stable(stack, tmp_path, V1)

    record = json.loads(ok(stack.cli("status", "agent-api", "--json"))[0])

    assert record == {
        **stack.record("agent-api"),
        "versions": record["versions"],
        "versions_total": 1,
        "instances": record["instances"],
        "instances_total": 3,
        "instance_counts": {"healthy": 3},
        "version": 1,
    }
    assert [v["version"] for v in record["versions"]] == ["1"]
    assert [(i["agent_id"], i["state"]) for i in record["instances"]] == [(f"worker-{n}", "healthy") for n in range(3)]


def test_history_shows_stable_flags_authors_and_rollback_reasons(stack: Stack, tmp_path: Path) -> None:
    stable(stack, tmp_path, V1)
    stable(stack, tmp_path, V2)
    ok(stack.cli("rollback", "agent-api", "--reason", "bad release"))
    stack.settle()

    header, *lines = ok(stack.cli("history", "agent-api"))
    rows = [line.split(" | ") for line in lines]

    assert header == "# Version: version | stable | created by | created at | deployment | rollback"

    assert [(r[0], r[1], r[2], r[4], r[5]) for r in rows] == [
        ("Version: 1", "stable", "deploy", "dep_agent-api_1", "-"),
        ("Version: 2", "stable", "deploy", "dep_agent-api_2", "-"),
        ("Version: 3", "stable", "rollback", "dep_agent-api_3", "2 -> 1: bad release"),
    ]


def test_events_print_one_line_each_and_json_one_document_each(stack: Stack, tmp_path: Path) -> None:
    stable(stack, tmp_path, V1)
    stored = stack.record("agent-api")["events"]

    lines = ok(stack.cli("events", "agent-api"))
    documents = [json.loads(line) for line in ok(stack.cli("events", "agent-api", "--json"))]

    assert len(lines) == len(stored) == 8
    assert lines[-1].startswith("Event: ")
    assert lines[-1].endswith("deployment_successful job_id=job_agent-api_1, version=1")
    assert documents == stored


# ---- operator actions --------------------------------------------------------------------------


def test_promote_confirms_and_the_rest_rolls(stack: Stack, tmp_path: Path) -> None:
    awaiting_canary(stack, tmp_path)

    lines = ok(stack.cli("promote", "agent-api"))

    assert "Status: running" in lines
    assert "Version: 2" in lines
    stack.settle()
    assert stack.record("agent-api")["status"] == "successful"


def test_rollback_to_a_named_version_with_a_reason(stack: Stack, tmp_path: Path) -> None:
    for image in ("agent:1", "agent:2", "agent:3"):
        stable(stack, tmp_path, service_manifest(image))

    lines = ok(stack.cli("rollback", "agent-api", "--version", "1", "--reason", "bad release"))

    assert "Rollback: 3 -> 1: bad release" in lines
    assert "Version: 4" in lines
    assert stack.record("agent-api")["rollback"] == {"from_version": "3", "to_version": "1", "reason": "bad release"}


def test_pause_resume_and_fail_answer_the_record(stack: Stack, tmp_path: Path) -> None:
    stable(stack, tmp_path, V1)
    ok(deploy(stack, tmp_path, V2))

    paused = ok(stack.cli("pause", "agent-api", "--reason", "hold on"))
    resumed = ok(stack.cli("resume", "agent-api"))
    failed = ok(stack.cli("fail", "agent-api", "--reason", "bad metrics", "--json"))

    assert ("Status: paused" in paused, "Description: hold on" in paused) == (True, True)
    assert "Next: mn-deploy deployment resume agent-api" in paused
    assert "Status: running" in resumed
    record = json.loads(failed[0])
    assert (record["status"], record["events"][-1]["reason"]) == ("failed", "bad metrics")
    assert record == {**stack.record("agent-api"), "version": 1}


def test_a_failed_deployment_suggests_rolling_back_to_the_stable_version(stack: Stack, tmp_path: Path) -> None:
    stable(stack, tmp_path, V1)
    ok(deploy(stack, tmp_path, V2))

    lines = ok(stack.cli("fail", "agent-api"))

    assert "Next: mn-deploy deployment rollback agent-api --version 1" in lines


# ---- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["history"],
        ["events"],
        ["watch"],
        ["promote"],
        ["rollback"],
        ["pause"],
        ["resume"],
        ["fail"],
    ],
)
def test_an_unknown_id_or_key_is_one_line_and_exit_2(stack: Stack, command: list[str]) -> None:
    one_line_error(stack.cli(*command, "no-such-app"), "deployment no-such-app was not found")


def test_a_refused_action_is_the_controllers_message_and_changes_nothing(stack: Stack, tmp_path: Path) -> None:
    stable(stack, tmp_path, V1)
    ok(deploy(stack, tmp_path, V2))
    before = stack.record("agent-api")

    one_line_error(stack.cli("promote", "agent-api"), "deployment is running, expected awaiting_promotion")
    one_line_error(
        stack.cli("pause", "dep_agent-api_1"), "deployment dep_agent-api_1 is successful; it can't be paused"
    )

    assert stack.record("agent-api") == before


def test_rollback_without_a_target_is_refused(stack: Stack, tmp_path: Path) -> None:
    stable(stack, tmp_path, V1)

    one_line_error(stack.cli("rollback", "agent-api"), "no rollback target found for deployment agent-api")


def test_an_invalid_manifest_lists_every_problem_and_deploys_nothing(stack: Stack, tmp_path: Path) -> None:
    bad = service_manifest(update={"strategy": "teleport", "max_parallel": -1})

    one_line_error(
        deploy(stack, tmp_path, bad),
        'policies.update.strategy has unsupported value "teleport"; '
        "policies.update.max_parallel must be a non-negative integer",
    )
    assert stack.deployment_ids() == []


def test_overrides_are_validated_like_the_manifest(stack: Stack, tmp_path: Path) -> None:
    result = deploy(stack, tmp_path, V1, "--min-healthy-ms", "5000", "--healthy-deadline-ms", "1000")

    one_line_error(result, "policies.update.min_healthy_ms must be less than healthy_deadline_ms")
    assert stack.deployment_ids() == []


def test_a_missing_bundle_is_refused_before_any_call(stack: Stack, tmp_path: Path) -> None:
    one_line_error(stack.cli("deploy", str(tmp_path / "nowhere")), f"Bundle not found: {tmp_path / 'nowhere'}")
    (tmp_path / "empty").mkdir()
    one_line_error(stack.cli("deploy", str(tmp_path / "empty")), f"Bundle {tmp_path / 'empty'} has no manifest.json")
    assert stack.deployment_ids() == []


def test_a_manifest_that_is_not_json_is_refused_before_any_call(stack: Stack, tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "app", '{"nodes": [')

    one_line_error(
        stack.cli("deploy", str(bundle)),
        f"{bundle / 'manifest.json'} is not valid JSON: Expecting value: line 1 column 12 (char 11)",
    )
    assert stack.deployment_ids() == []


@pytest.mark.parametrize("target", ["/etc/hostname", "../../outside.json"])
def test_an_unsafe_payload_path_is_refused_before_any_call(stack: Stack, tmp_path: Path, target: str) -> None:
    bundle = write_bundle(tmp_path / "deep" / "app", V1, {"input.json": b"{}"})
    (tmp_path / "deep" / "outside.json").write_text("{}")
    (bundle / "payloads" / "escape.json").symlink_to(target)

    one_line_error(stack.cli("deploy", str(bundle)), f"Unsafe payload path: escape.json -> {target}")
    assert stack.deployment_ids() == []


def test_a_payload_file_name_that_cannot_be_sent_is_refused_before_any_call(stack: Stack, tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "app", V1, {"input.json": b"{}"})
    (bundle / "payloads" / os.fsdecode(b"model-\xff.bin")).write_bytes(b"x")  # not UTF-8: protobuf cannot send it

    one_line_error(stack.cli("deploy", str(bundle)), 'Unsafe payload path: "model-\\udcff.bin" (not UTF-8 text)')
    assert stack.deployment_ids() == []


def test_a_deployment_with_odd_characters_is_shown_with_them_escaped(stack: Stack, tmp_path: Path) -> None:
    """A key the controller takes may still hold what breaks a line (U+2028, a line separator), and a record
    another writer stored may hold anything (a newline, a lone surrogate, an escape sequence that would drive the
    terminal): all are printed escaped."""
    odd = service_manifest("agent:1")
    odd["deployment"]["key"] = "odd\u2028x"
    ok(deploy(stack, tmp_path, odd))
    with stack.lock:
        foreign = samples.deployment("odd\ud800\n\x1b[31m", 7)
        stack.world.store.save_deployment(foreign, [])

    plain = ok(stack.cli("list"))
    rich = ok(stack.cli("list", env={"MN_CLI_OUTPUT": "rich", "COLUMNS": "200"}))

    assert plain[0].startswith("# Deployment: deployment | key")
    assert plain[1].startswith("Deployment: dep_odd-x_1 | odd\\u2028x | running")  # number 1, the older
    assert plain[2].startswith("Deployment: dep_odd-31m_7 | odd\\ud800\\n\\x1b[31m | running")
    assert any("odd\\ud800\\n\\x1b[31m" in line for line in rich)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=awkward_values, whole=st.booleans())
def test_fuzz_a_manifest_is_deployed_or_refused_in_one_line(stack: Stack, value: Any, whole: bool) -> None:
    """Anywhere in a manifest, or as the whole of it: deployed (and listed), or refused in one line with exit 2,
    always when nested too deep or holding a number that is not finite."""
    document = value if whole else {**V1, "nodes": [{**V1["nodes"][0], "config": {"odd": value}}]}
    with tempfile.TemporaryDirectory() as root:
        result = stack.cli("deploy", str(write_bundle(Path(root), json.dumps(document))))

    assert result.exit_code in (0, 2), result.output
    if result.exit_code == 2:
        assert (result.stdout, result.stderr.count("\n")) == ("", 1)
        assert result.stderr.startswith("error: ")
    assert result.exit_code == 2 or not unfit(document)
    ok(stack.cli("list"))


class Garbled(job_pb2_grpc.JobServiceServicer):
    """A broken controller: every GetDeployment answers `text`."""

    def __init__(self, text: str) -> None:
        self.text = text

    def GetDeployment(
        self, request: job_pb2.GetDeploymentRequest, context: grpc.ServicerContext
    ) -> job_pb2.DeploymentResponse:
        return job_pb2.DeploymentResponse(result_json=self.text)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[" * 100_000 + "]" * 100_000, "is nested too deep"),  # json.loads raises RecursionError
        ('{"status": ', "is not valid: Expecting value: line 1 column 12 (char 11)"),
        ("[]", "is not an object"),
    ],
)
def test_an_answer_that_cannot_be_read_is_one_line_and_exit_3(text: str, problem: str) -> None:
    with serving(Garbled(text)) as cli:
        result = cli.cli("status", "agent-api")

    one_line_error(result, f"the controller at {cli.target} answered JSON that {problem}", code=3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["deploy", "app", "--strategy", "teleport"], "Invalid value for '--strategy': 'teleport' is not one of"),
        (["deploy", "app", "--canary", "-1"], "Invalid value for '--canary': -1 is not in the range x>=0."),
        (["promote"], "Missing argument 'ID_OR_KEY'."),
        (["teleport"], "No such command 'teleport'."),
        (["list", "--status", "happy"], "Invalid value for '--status': 'happy' is not one of"),
        (["watch", "app", "--interval", "nan"], "Invalid value for '--interval': 'nan' is not a finite number."),
        (["events", "app", "--interval", "inf"], "Invalid value for '--interval': 'inf' is not a finite number."),
        (["watch", "app", "--grace", "-1"], "Invalid value for '--grace': -1.0 is not in the range x>=0."),
        (["deploy", "app", "--grace", "nan"], "Invalid value for '--grace': 'nan' is not a finite number."),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(stack: Stack, args: list[str], message: str) -> None:
    result = stack.cli(*args)

    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith(f"error: {message}")
    assert result.stderr.count("\n") == 1


def test_an_unreachable_controller_names_the_target_and_dev_up(tmp_path: Path) -> None:
    target = f"127.0.0.1:{free_port()}"

    one_line_error(
        Cli(target).cli("status", "agent-api"),
        f"cannot reach the controller at {target}: start one with `mn-deploy dev up`",
        code=3,
    )


def test_a_controller_too_slow_to_answer_is_exit_3(stack: Stack) -> None:
    api = DeploymentApi(stack.target, timeout_s=0.2)
    with stack.lock, pytest.raises(ApiError) as caught:  # the controller is busy for longer than the timeout
        api.get("agent-api")
    api.close()

    assert caught.value.message == f"the controller at {stack.target} did not answer within 0.2 s"
    assert caught.value.exit_code == 3


def test_an_interrupted_command_is_one_line_and_exit_130(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(DeploymentApi, "get", interrupted)

    one_line_error(stack.cli("watch", "agent-api"), "interrupted; the deployment goes on", code=130)


def test_target_flag_wins_over_the_environment(stack: Stack, tmp_path: Path) -> None:
    stable(stack, tmp_path, V1)
    dead = f"127.0.0.1:{free_port()}"

    lines = ok(stack.cli("status", "agent-api", "--target", stack.target, env={"MN_GRPC_TARGET": dead}))

    assert "Status: successful" in lines


# ---- rich ----------------------------------------------------------------------------------------


def test_rich_output_renders_the_panel_and_the_table(stack: Stack, tmp_path: Path) -> None:
    awaiting_canary(stack, tmp_path)

    panel = ok(stack.cli("status", "agent-api", env={"MN_CLI_OUTPUT": "rich"}))
    table = ok(stack.cli("list", env={"MN_CLI_OUTPUT": "rich", "COLUMNS": "200"}))

    assert panel[0].startswith("╭─ Deployment status")
    assert any("awaiting_promotion" in line and "Status" in line for line in panel)
    assert any("mn-deploy deployment promote agent-api" in line for line in panel)
    assert any("dep_agent-api_2" in line and "awaiting_promotion" in line for line in table)
