"""`deployment status`'s instance table: the rows GetDeployment adds (bounded, merged with what workers report) and
how the CLI shows them, plain, Rich at 80 columns and as JSON; and a batch deployment counted by completion."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from backends.live.controller import results
from backends.protocol.sizes import MAX_REPLY_BYTES
from backends.redis.instance_runtime import EXITED, FAILED, RUNNING, STARTING, ProcessInfo
from mn_deploy.deployment_view import RoleProgress, instance_rows, instances_footer, role_progress
from mn_deploy_core.ports import FactKind
from mn_deploy_core.records import InstanceRecord, iso_timestamp
from tests.cli.conftest import Stack
from tests.cli.test_deployment_cli import V1, deploy, ok, stable
from tests.scripted import service_manifest

ROW_KEYS = {"instance_id", "agent_id", "version", "role", "node", "pid", "port", "state", "restarts", "since"}
T0 = 1_796_000_000_000.0  # a time in ms since the epoch


PLACED = InstanceRecord("", "", "job_k_1", "k", "dep_k_1", "1", "primary", T0)


def instance(agent: str, **fields: Any) -> InstanceRecord:
    """An instance of agent `agent` placed at T0, with these fields of its lifecycle."""
    return replace(PLACED, instance_id=f"dep_k_1.{agent}.0", agent_id=agent, **fields)


def row(record: InstanceRecord, process: ProcessInfo | None = None, node: str | None = "node-1") -> dict[str, object]:
    return results.instance_row(record, None if node is None else (node, process))


# ---- the reply -----------------------------------------------------------------------------------------------


def test_a_row_has_the_workers_node_pid_port_and_the_controllers_verdict_since_the_later_of_both() -> None:
    healthy = instance("web-0", running_ms=T0 + 100, healthy_ms=T0 + 1_000)
    process = ProcessInfo(RUNNING, T0 + 100, 0, pid=4242, port=8080)

    assert row(healthy, process) == {
        "instance_id": "dep_k_1.web-0.0",
        "agent_id": "web-0",
        "version": "1",
        "role": "primary",
        "node": "node-1",
        "pid": 4242,
        "port": 8080,
        "state": "healthy",
        "restarts": 0,
        "since": iso_timestamp(T0 + 1_000),
    }
    restarted = ProcessInfo(RUNNING, T0 + 5_000, 1, pid=4343, port=8081)
    assert (row(healthy, restarted)["since"], row(healthy, restarted)["restarts"]) == (iso_timestamp(T0 + 5_000), 1)


def test_a_process_that_does_not_run_shows_the_workers_state_and_an_end_the_controllers() -> None:
    healthy = instance("web-0", running_ms=T0, healthy_ms=T0 + 1_000, restart_ms=(T0 + 3_000,))

    exited = row(healthy, ProcessInfo(EXITED, T0 + 2_000, 0))
    assert (exited["state"], exited["since"], exited["pid"], exited["restarts"]) == (
        "exited",
        iso_timestamp(T0 + 2_000),
        None,
        1,  # the controller's count: this worker took the instance over
    )
    assert row(instance("web-0"), ProcessInfo(STARTING, T0 + 10, 0))["state"] == "starting"
    assert row(instance("web-0"), node=None)["state"] == "placed"
    completed = row(instance("job-0", running_ms=T0, completed_ms=T0 + 900), node=None)
    assert (completed["state"], completed["since"], completed["node"]) == ("completed", iso_timestamp(T0 + 900), None)
    failed = instance("web-0", failed=True, healthy=False, unhealthy_ms=T0 + 7_000)
    assert row(failed, ProcessInfo(FAILED, T0 + 6_000, 2))["state"] == "failed"


def test_a_reply_lists_the_first_rows_by_agent_and_counts_all_of_a_hundred_thousand_within_the_reply_cap() -> None:
    records = [instance(f"agent-{n:06d}", running_ms=T0, healthy_ms=T0) for n in reversed(range(100_000))]
    records[-1] = instance("agent-000000", running_ms=T0)  # no verdict yet
    shown = results.shown_instances(records)
    where = {r.instance_id: ("node-1", ProcessInfo(RUNNING, T0, 0, pid=99_999, port=65_535)) for r in shown}

    reply = results.with_instances({"deployment_id": "dep_k_1"}, records, records, shown, where)

    assert len(reply["instances"]) == results.INSTANCES_SHOWN
    assert [r["agent_id"] for r in reply["instances"][:2]] == ["agent-000000", "agent-000001"]
    assert set(reply["instances"][0]) == ROW_KEYS
    assert (reply["instances_total"], reply["instance_counts"]) == (100_000, {"healthy": 99_999, "running": 1})
    assert len(results.encode(reply).encode()) < MAX_REPLY_BYTES // 10


# ---- rendering -----------------------------------------------------------------------------------------------


def test_rows_show_unknowns_as_a_dash_and_since_as_a_duration() -> None:
    reply = {
        "instances": [
            row(instance("web-0", running_ms=T0, healthy_ms=T0), ProcessInfo(RUNNING, T0, 0, pid=7, port=80)),
            row(instance("web-1"), node=None),
        ],
        "instances_total": 2,
    }

    assert instance_rows(reply, T0 + 65_000) == [
        ["web-0", "1", "primary", "node-1", "7", "80", "healthy", "0", "1m 5s"],
        ["web-1", "1", "primary", "-", "-", "-", "placed", "0", "1m 5s"],
    ]
    assert instances_footer(reply) == "2 instances"


def test_the_footer_says_how_many_rows_of_how_many_instances_are_shown() -> None:
    assert instances_footer({"instances": [{}], "instances_total": 1}) == "1 instance"
    assert instances_footer({}) == "0 instances"
    assert instances_footer({"instances": [{}] * 1_000, "instances_total": 100_000}) == (
        "showing the first 1,000 of 100,000 instances (by agent id); --json gives the same rows"
    )


def test_a_batch_job_counts_its_agents_by_completion() -> None:
    counters = {"desired_total": 2, "desired_canaries": 0, "placed": 2, "healthy": 0, "unhealthy": 0}
    events = [{"type": "deployment_created"}, {"type": "deployment_successful"}]
    batch = {"target_manifest": {"job_type": "batch"}, "counters": counters, "events": events}

    assert role_progress({**batch, "instance_counts": {"completed": 1, "running": 1}}) == [
        RoleProgress("primary", 1, 2, 2, "completed")
    ]
    assert role_progress({**batch, "target_manifest": {}})[0].text() == "0/2 completed, 2 placed"  # batch by default
    service = {**batch, "target_manifest": {"job_type": "service"}}
    assert role_progress(service)[0].text() == "0/2 healthy, 0 placed"


# ---- the command -------------------------------------------------------------------------------------------


def test_status_lists_the_instances_after_the_panel_and_json_holds_the_same_rows(stack: Stack, tmp_path: Path) -> None:
    stable(stack, tmp_path, V1)

    lines = ok(stack.cli("status", "agent-api"))
    reply = json.loads(ok(stack.cli("status", "agent-api", "--json"))[0])

    table = [line for line in lines if line.startswith("Instance")]
    header = "# Instance: agent | version | role | node | pid | port | state | restarts | since"
    assert lines[-len(table) - 1 :] == [header, *table], "the table, under its header line, comes last"
    for n, line in enumerate(table[:-1]):
        assert re.fullmatch(rf"Instance: worker-{n} \| 1 \| primary \| - \| - \| - \| healthy \| 0 \| \d+s", line)
    assert table[-1] == "Instances: 3 instances"
    assert [(r["agent_id"], r["version"], r["role"], r["state"]) for r in reply["instances"]] == [
        (f"worker-{n}", "1", "primary", "healthy") for n in range(3)
    ]
    assert all(set(r) == ROW_KEYS for r in reply["instances"])
    assert reply["instances_total"] == 3


def test_the_rich_table_fits_80_columns_with_every_header_whole(stack: Stack, tmp_path: Path) -> None:
    stable(stack, tmp_path, V1)

    lines = ok(stack.cli("status", "agent-api", env={"MN_CLI_OUTPUT": "rich", "COLUMNS": "80"}))

    assert max(len(line) for line in lines) <= 80
    header = next(line for line in lines if line.startswith("agent"))
    assert header.split() == ["agent", "version", "role", "node", "pid", "port", "state", "restarts", "since"]
    assert sum(line.startswith("worker-") for line in lines) == 3
    assert lines[-1] == "3 instances"


def test_a_completed_batch_deployment_says_its_agents_completed(stack: Stack, tmp_path: Path) -> None:
    ok(deploy(stack, tmp_path, service_manifest(key="nightly", count=2, job_type="batch")))
    with stack.lock:
        for placed in stack.world.instances_of("dep_nightly_1"):
            stack.world.report(placed.instance_id, FactKind.RUNNING)
            stack.world.report(placed.instance_id, FactKind.COMPLETED)

    lines = ok(stack.cli("status", "nightly"))

    assert "Primary: 2/2 completed, 2 placed" in lines
    assert [line.split(" | ")[6] for line in lines if line.startswith("Instance: ")] == ["completed", "completed"]
