"""Sim test fixtures: headless matplotlib, the example scenarios, and a small result built by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
import pytest

from sim import Result

matplotlib.use("Agg")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "scenarios"


def replay(path: Path | str, seed: int) -> str:
    """What a failing assertion prints: the seed and the one command that replays the run."""
    return f"seed {seed}; replay: mn-deploy sim run {path} --seed {seed}"


def _instance(instance_id: str, agent: str, version: str, manifest: str, role: str, **times: Any) -> dict[str, Any]:
    row = {
        "instance_id": instance_id,
        "agent_id": agent,
        "deployment_key": "k",
        "deployment_id": f"dep_k_{version}",
        "job_id": "job_k_1",
        "version": version,
        "manifest_name": manifest,
        "role": role,
        "placed_ms": 0.0,
        "running_ms": None,
        "healthy_ms": None,
        "unhealthy_ms": None,
        "promoted_ms": None,
        "stopped_ms": None,
        "completed_ms": None,
        "restart_ms": [],
        "passing_again_ms": [],
        "discoverable_ms": [],
        "restarts": 0,
        "outcome": "running",
    }
    row.update(times)
    return row


def _event(t: float, dep: str, kind: str, **fields: Any) -> dict[str, Any]:
    return {"t_ms": t, "deployment_id": dep, "type": f"deployment_{kind}", **fields}


@pytest.fixture
def handmade() -> Result:
    """Key k: v1 on agents a and b (healthy at 10 s); at 100 s a canary of v2 on a (healthy at 110 s,
    promoted at 120 s, which stops a's v1), then b rolls (v2 healthy at 140 s, proves unhealthy at 170 s);
    the run ends at 200 s. A promote at 105 s was refused."""
    d1, d2 = "dep_k_1", "dep_k_2"
    events = [
        _event(0.0, d1, "created", job_id="job_k_1", version="1"),
        _event(0.0, d1, "instance_placed", instance_id="a1", agent_id="a", role="primary", version="1"),
        _event(0.0, d1, "instance_placed", instance_id="b1", agent_id="b", role="primary", version="1"),
        _event(10_000.0, d1, "instance_healthy", instance_id="a1", agent_id="a"),
        _event(10_000.0, d1, "instance_healthy", instance_id="b1", agent_id="b"),
        _event(10_000.0, d1, "successful", job_id="job_k_1", version="1"),
        _event(100_000.0, d2, "started", version="2", changed_agent_ids=["a", "b"]),
        _event(100_000.0, d2, "instance_placed", instance_id="a2", agent_id="a", role="canary", version="2"),
        _event(110_000.0, d2, "instance_healthy", instance_id="a2", agent_id="a"),
        _event(110_000.0, d2, "canary_ready", version="2", canary_agent_ids=["a"]),
        _event(120_000.0, d2, "promoted", version="2"),
        _event(120_000.0, d2, "instance_placed", instance_id="b2", agent_id="b", role="primary", version="2"),
        _event(140_000.0, d2, "instance_healthy", instance_id="b2", agent_id="b"),
        _event(140_000.0, d2, "successful", job_id="job_k_1", version="2"),
        _event(170_000.0, d2, "instance_unhealthy", instance_id="b2", agent_id="b"),
    ]
    v1 = {"healthy_ms": 10_000.0, "stopped_ms": 120_000.0, "outcome": "stopped"}
    instances = [
        _instance("a1", "a", "1", "v1", "primary", **v1, discoverable_ms=[[10_000.0, 120_000.0]]),
        _instance("b1", "b", "1", "v1", "primary", **v1, discoverable_ms=[[10_000.0, 120_000.0]]),
        _instance(
            "a2",
            "a",
            "2",
            "v2",
            "canary",
            placed_ms=100_000.0,
            healthy_ms=110_000.0,
            promoted_ms=120_000.0,
            discoverable_ms=[[120_000.0, None]],
            outcome="healthy",
        ),
        _instance(
            "b2",
            "b",
            "2",
            "v2",
            "primary",
            placed_ms=120_000.0,
            healthy_ms=140_000.0,
            unhealthy_ms=170_000.0,
            discoverable_ms=[[140_000.0, 170_000.0]],
            outcome="unhealthy",
        ),
    ]
    deployments = [
        {
            "deployment_id": d,
            "deployment_key": "k",
            "status": "successful",
            "target_version": v,
            "description": "Deployment completed successfully",
            "events": [e for e in events if e["deployment_id"] == d],
        }
        for d, v in ((d1, "1"), (d2, "2"))
    ]
    return Result(
        scenario="handmade",
        seed=0,
        end_ms=200_000.0,
        deployments=deployments,
        versions={"k": []},
        instances=instances,
        events=events,
        errors=[{"t_ms": 105_000.0, "action": {"at_ms": 105_000, "promote": "k"}, "message": "refused"}],
        final={},
        metrics={},
    )
