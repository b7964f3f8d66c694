"""`mn-deploy deployment export` and `deployment plot` on a whole stack: a rollout of examples/bundles/hello v1,
then v2-broken (its agents fail their health checks) reverted by auto_revert, exported as a trace and drawn."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from backends.redis.client import connect
from mn_deploy.live_cli import mn_deploy_command
from mn_deploy.traces import read_trace
from mn_deploy_core.trace import check_trace
from sim.plots import run_figure
from sim.traced import result_of_trace
from tests.e2e.conftest import World
from tests.polling import wait_for

pytestmark = pytest.mark.e2e

FAST = {"min_healthy_ms": 300}


def cli(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    """`mn-deploy deployment ...` as a user runs it, with the stack's Redis in MN_REDIS_URL."""
    env = {**os.environ, "MN_REDIS_URL": world.stack.redis_url, "MN_CLI_OUTPUT": "plain"}
    command = [*mn_deploy_command(), "deployment", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)


def reverted_rollout(world: World) -> str:
    """v1, then v2-broken failed and reverted; the failed deployment's id once every instance it placed stopped."""
    world.deploy("hello/v1.json", **FAST)
    world.settled()
    failed = world.deploy("hello/v2-broken.json", **FAST, healthy_deadline_ms=1500, auto_revert=True)
    failed_id = str(failed["deployment"]["deployment_id"])
    assert world.settled(failed_id, timeout_s=30.0)["status"] == "failed"
    assert world.settled()["status"] == "successful"
    client = connect(world.stack.redis_url)
    try:
        wait_for(lambda: all_stopped(read_trace(client, "hello"), failed_id), what="the failed version to stop")
    finally:
        client.close()
    return failed_id


def all_stopped(trace: dict[str, Any], deployment_id: str) -> bool:
    own = [i for i in trace["instances"] if i["deployment_id"] == deployment_id]
    return bool(own) and all(i["life"] and i["life"]["stopped_ms"] is not None for i in own)


def test_a_reverted_rollout_exports_as_a_trace_and_draws_as_a_simulated_one(world: World, tmp_path: Path) -> None:
    failed_id = reverted_rollout(world)
    out = tmp_path / "hello.json"

    written = cli(world, "export", "hello", "--out", str(out))
    by_id = cli(world, "export", failed_id)

    assert written.returncode == 0, written.stderr
    trace = check_trace(json.loads(out.read_text()))
    assert written.stdout.startswith(f"{out}: 3 deployment(s), {len(trace['instances'])} instance(s), ")
    assert by_id.returncode == 0, by_id.stderr
    assert json.loads(by_id.stdout)["deployments"] == trace["deployments"], "the failure's trace includes its revert"

    assert trace["source"] == "live" and trace["complete"]
    assert datetime.fromisoformat(trace["origin"]).utcoffset() is not None
    deploys = [a["deploy"] for a in trace["actions"]]
    assert deploys == ["hello@1", "hello@2"]
    times = [a["at_ms"] for a in trace["actions"]]
    assert times[0] == 0 and times[1] > times[0]
    events = [e["type"] for d in trace["deployments"] for e in d["events"]]
    assert "deployment_failed" in events and "deployment_reverted" in events
    assert [d["status"] for d in trace["deployments"]] == ["successful", "failed", "successful"]
    assert [v["created_by"] for v in trace["versions"]] == ["deploy", "deploy", "auto_revert"]
    assert all(v["bundle_fingerprint"] for v in trace["versions"])
    placed = [i for i in trace["instances"] if i["placed_ms"] is not None]
    assert placed and all(i["facts"] and i["facts"][0]["kind"] == "placed" for i in placed)
    assert all(f["t_ms"] >= 0 for i in placed for f in i["facts"])
    failing = [i for i in placed if i["deployment_id"] == failed_id]
    assert failing and all(any(f["kind"] == "check_failing" for f in i["facts"]) for i in failing)
    assert all(i["life"]["stopped_ms"] is not None for i in failing), "the lives carry stopped instances"

    png = tmp_path / "live.png"
    from_redis = cli(world, "plot", "hello", "--out", str(png))
    from_file = cli(world, "plot", "--trace", str(out), "--out", str(tmp_path / "file.png"))
    assert from_redis.returncode == 0, from_redis.stderr
    assert from_file.returncode == 0, from_file.stderr
    for image in (png, tmp_path / "file.png"):
        assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    figure = run_figure(result_of_trace(trace), traced="live")
    timeline, capacity = figure.axes[:2]
    agents = sorted({i["agent_id"] for i in placed})
    assert [t.get_text() for t in timeline.get_yticklabels()] == agents
    shown = {t.get_text() for t in timeline.get_legend().get_texts()}
    assert {"hello@1 (primary)", "hello@2 (primary)", "healthy", "unhealthy"} <= shown
    serving = {t.get_text() for t in capacity.get_legend().get_texts() if t.get_text().endswith(" serving")}
    assert serving == {"hello@1 serving"}, "v2 failed its checks: it never served"


def test_an_unknown_key_exports_nothing(world: World, tmp_path: Path) -> None:
    out = tmp_path / "none.json"

    result = cli(world, "export", "nobody", "--out", str(out))

    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "error: no deployment or deployment key 'nobody' is recorded\n"
    assert not out.exists()
