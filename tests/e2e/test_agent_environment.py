"""What an agent gets of its worker, on a whole dev stack: a variable set only in the workers' environment does
not reach the agent; what its node's `config.env` declares does, beside the documented variables.

The agent, a batch job deployed through the API, writes its environment as JSON to `$MN_PROBE_OUT/<instance>.json`
(MN_PROBE_OUT comes from `config.env`) and exits 0. It is run by this interpreter's absolute path: a `python3`
found on PATH may be a shim (pyenv's) that adds variables of its own.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mn_deploy_core.manifest_problems import WORKER_VARIABLES
from tests.e2e.conftest import World, _environment, marked
from tests.polling import wait_for

pytestmark = pytest.mark.e2e

WORKER_ONLY = "MN_E2E_WORKER_ONLY_SECRET"
PROBE = """
import json, os
from pathlib import Path

out = Path(os.environ["MN_PROBE_OUT"]) / (os.environ["MN_INSTANCE_ID"] + ".json")
out.with_suffix(".part").write_text(json.dumps(dict(os.environ)))
out.with_suffix(".part").rename(out)
"""


@pytest.fixture
def workers_secret(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Set in the test's environment before the stack starts, so only the stack's processes (workers) inherit it."""
    monkeypatch.setenv(WORKER_ONLY, "a secret of the workers")
    yield WORKER_ONLY


@pytest.fixture
def probe_world(workers_secret: str, world: World, tmp_path: Path) -> World:
    """The world, deploying bundles from the test's own directory; the workers started with `workers_secret`."""
    return replace(world, bundles=tmp_path / "bundles")


def probe_bundle(root: Path, out: Path) -> str:
    """A batch manifest `probe/manifest.json` (with `payloads/probe.py`) under `root`; its bundle name there."""
    node = {
        "node_id": "probe",
        "agent_type": "executor",
        "count": 2,
        "config": {"command": [sys.executable, "probe.py"], "env": {"MN_PROBE_OUT": str(out), "GREETING": "hi there"}},
    }
    manifest = {"graph_id": "probe", "job_type": "batch", "deployment": {"key": "probe"}, "nodes": [node]}
    (root / "probe" / "payloads").mkdir(parents=True)
    (root / "probe" / "manifest.json").write_text(json.dumps(manifest))
    (root / "probe" / "payloads" / "probe.py").write_text(PROBE)
    return "probe"


def workers_with_the_secret(world: World) -> list[int]:
    """The stack's worker processes (`mn-deploy agent worker`) whose environment holds WORKER_ONLY."""
    return [
        pid
        for pid in marked(world.marker, world.root)
        if b"worker" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") and WORKER_ONLY in _environment(pid)
    ]


def test_an_agent_sees_its_config_env_and_none_of_its_workers_variables(probe_world: World, tmp_path: Path) -> None:
    world = probe_world
    out = tmp_path / "probe-out"
    out.mkdir()
    assert len(workers_with_the_secret(world)) == 2, "both workers run with the variable"

    world.deploy(probe_bundle(tmp_path / "bundles", out))
    reports = wait_for(lambda: len(found := sorted(out.glob("*.json"))) == 2 and found, what="both agents' reports")

    for report in reports:
        env: dict[str, Any] = json.loads(report.read_text())
        assert WORKER_ONLY not in env
        assert set(env) == WORKER_VARIABLES | {"PATH", "LANG", "MN_PROBE_OUT", "GREETING"}, report.name
        assert (env["GREETING"], env["MN_PROBE_OUT"]) == ("hi there", str(out))
        assert env["MN_DEPLOYMENT_KEY"] == "probe" and env["MN_INSTANCE_ID"] == report.stem
