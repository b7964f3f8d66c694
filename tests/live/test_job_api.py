"""GetJob, ListJobs and CancelJob for the jobs deployments create, through the official SDK client and `mn` CLI;
and the job methods we do not serve answering UNIMPLEMENTED with one log line."""

from __future__ import annotations

import json
import logging
from typing import Any

import grpc
import pytest

from tests.live.conftest import Api
from tests.live.test_grpc_api import V1, V2, deploy, get, mn, rpc_error, stable
from tests.scripted import service_manifest

BLUE_GREEN = service_manifest("agent:2", update={"strategy": "blue-green", "canary": 1})


def job(api: Api, job_id: str) -> Any:
    return json.loads(api.client.get_job(job_id))


def jobs(api: Api, **options: Any) -> list[tuple[str, str]]:
    return [(j["job_id"], j["status"]) for j in json.loads(api.client.list_jobs(**options))["data"]]


def test_a_deployments_job_is_running_with_its_deployment_and_instances(api: Api) -> None:
    job_id = stable(api, V1)["job_id"]

    found = job(api, job_id)

    assert (found["job_id"], found["graph_id"], found["status"]) == ("job_agent-api_1", "agent-api", "running")
    assert found["deployment"] == {
        "deployment_id": "dep_agent-api_1",
        "deployment_key": "agent-api",
        "deployment_version": "1",
        "status": "successful",
    }
    assert [(i["agent_id"], i["role"], i["deployment_version"]) for i in found["instances"]] == [
        (f"worker-{n}", "primary", "1") for n in range(3)
    ]
    assert found["submitted_at"] == get(api, "agent-api")["versions"][0]["created_at"]


def test_a_rolling_update_keeps_the_job_and_it_follows_the_newest_deployment(api: Api) -> None:
    stable(api, V1)
    update = stable(api, V2)

    found = job(api, "job_agent-api_1")

    assert update["job_id"] == "job_agent-api_1"
    assert found["deployment"]["deployment_id"] == "dep_agent-api_2"
    assert {i["deployment_version"] for i in found["instances"]} == {"2"}


@pytest.mark.parametrize("job_id", ["job_nothing_1", "dep_agent-api_1", "agent-api", "job_agent-api_2", ""])
def test_an_id_no_deployment_created_a_job_by_is_not_found(api: Api, job_id: str) -> None:
    stable(api, V1)
    stable(api, V1)  # a noop: deployment 2 created no job

    error = rpc_error(api.client.get_job, job_id)

    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert error.details() == f"job {job_id} was not found"


def test_a_blue_green_promotion_cancels_the_old_job(api: Api) -> None:
    stable(api, V1)
    deploy(api, BLUE_GREEN)
    api.settle()
    assert jobs(api) == [("job_agent-api_2", "running"), ("job_agent-api_1", "running")]

    api.client.promote_deployment("agent-api")
    api.settle()

    assert jobs(api) == [("job_agent-api_2", "running"), ("job_agent-api_1", "cancelled")]
    assert jobs(api, include_terminal=False) == [("job_agent-api_2", "running")]
    assert jobs(api, limit=1) == [("job_agent-api_2", "running")]
    assert "instances" not in json.loads(api.client.list_jobs())["data"][0]


def test_list_holds_the_jobs_of_every_key(api: Api) -> None:
    stable(api, V1)
    billing = deploy(api, service_manifest(key="billing"))["job_id"]

    assert sorted(jobs(api)) == [("job_agent-api_1", "running"), (billing, "running")]


def test_cancelling_a_candidate_job_fails_its_rollout_and_stops_it(api: Api) -> None:
    stable(api, V1)
    candidate = deploy(api, BLUE_GREEN)["job_id"]
    api.settle()

    status = api.client.cancel_job(candidate)

    record = get(api, "dep_agent-api_2")
    assert status == "failed"
    assert record["status"] == "failed"
    assert record["description"].startswith("Deployment marked as failed")
    assert job(api, candidate)["instances"] == []
    assert jobs(api) == [(candidate, "failed"), ("job_agent-api_1", "running")]


def test_cancelling_a_serving_job_is_refused_and_changes_nothing(api: Api) -> None:
    job_id = stable(api, V1)["job_id"]

    error = rpc_error(api.client.cancel_job, job_id)

    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == (
        "job job_agent-api_1 serves deployment agent-api: a serving job is replaced by a new version or a rollback, "
        "not cancelled"
    )
    assert job(api, job_id)["status"] == "running"
    assert get(api, "agent-api")["status"] == "successful"


def test_cancelling_a_job_that_no_longer_runs_is_refused(api: Api) -> None:
    stable(api, V1)
    deploy(api, service_manifest("agent:2", update={"strategy": "blue-green"}))
    api.settle()

    error = rpc_error(api.client.cancel_job, "job_agent-api_1")

    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "job job_agent-api_1 is cancelled"


def test_the_official_cli_shows_and_lists_jobs(api: Api) -> None:
    stable(api, V1)

    status = mn(api, "job", "status", "job_agent-api_1")
    listed = mn(api, "job", "list")

    assert status.returncode == 0, status.stdout + status.stderr
    assert json.loads(status.stdout)["status"] == "running"
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "job_agent-api_1" in listed.stdout


def test_the_official_cli_reports_a_refused_cancel_and_exits_non_zero(api: Api) -> None:
    stable(api, V1)

    refused = mn(api, "job", "cancel", "job_agent-api_1")

    assert refused.returncode == 2  # the CLI shows our message only with MN_DEBUG=1, as for every refusal
    assert "MN_INVALID_ARGUMENT" in refused.stdout
    assert job(api, "job_agent-api_1")["status"] == "running"


def test_an_unserved_job_method_is_unimplemented_with_one_log_line(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    error = rpc_error(api.client.pause_job, "job_agent-api_1")

    assert error.code() is grpc.StatusCode.UNIMPLEMENTED
    assert error.details() == "JobService.PauseJob is not implemented by mn-deploy"
    assert [(r.name, r.getMessage(), r.exc_info) for r in caplog.records] == [
        (
            "backends.live.controller.server",
            "JobService.PauseJob called: not implemented by mn-deploy, answered UNIMPLEMENTED",
            None,
        )
    ]
