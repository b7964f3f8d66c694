"""What an agent gets of its worker (docs/live.md, "What an agent gets"): a real worker on a real redis-server runs
a real agent that reports its environment and its directory, as it sees them, into a file the test names.

The agent sees exactly the documented variables plus its node's `config.env`, none of the worker's own; its
payloads are 0600 in 0700 directories; HOME and TMPDIR are its own; its PORT is reserved for it while it runs. A
placement whose `config.env` no process could be given (written to Redis around the controller) fails without
running anything.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from backends.live.controller.runtime import RedisRuntime
from backends.live.worker.daemon import Worker
from backends.live.worker.supervisor import AgentUser
from backends.loopback import reserved_port
from backends.redis.bundles import RedisBundleStore
from mn_deploy_core.manifest_problems import WORKER_VARIABLES
from mn_deploy_core.ports import Fact, FactKind
from tests.live import test_worker
from tests.live.conftest import Facts, order_key_file
from tests.live.test_worker import agent_node, placement
from tests.polling import wait_for

# test_worker's fixtures: its workers in threads, its bundle store, and what tells this test's agents apart
run_token = test_worker.run_token
start_worker = test_worker.start_worker
bundles = test_worker.bundles

WORKER_ONLY = "MN_TEST_WORKER_ONLY_SECRET"

# Reports what the agent sees into argv[1]: its environment, its working and temporary directories, the mode and
# owner of everything in its instance directory (the parent of MN_BUNDLE_DIR) once it wrote a file in HOME and
# one in TMPDIR, and who it runs as.
PROBE = b"""
import json, os, stat, sys, tempfile
from pathlib import Path

bundle = Path(os.environ["MN_BUNDLE_DIR"])
root = bundle.parent
(Path(os.environ["HOME"]) / "note").write_text("home")
with tempfile.NamedTemporaryFile(delete=False) as scratch:
    scratch.write(b"tmp")
everything = [root, *root.rglob("*")]
modes = {str(p.relative_to(root)): oct(stat.S_IMODE(p.lstat().st_mode)) for p in everything}
owners = {str(p.relative_to(root)): [p.lstat().st_uid, p.lstat().st_gid] for p in everything}
report = {
    "owners": owners,
    "groups": os.getgroups(),
    "gid": os.getgid(),
    "env": dict(os.environ),
    "cwd": os.getcwd(),
    "scratch": scratch.name,
    "modes": modes,
    "uid": os.getuid(),
}
Path(sys.argv[1]).write_text(json.dumps(report))
"""


def run_probe(
    bundles: RedisBundleStore,
    runtime: RedisRuntime,
    facts: Facts,
    out: Path,
    env: dict[str, Any],
    python: str = sys.executable,
    probe: bytes = PROBE,
) -> dict[str, Any]:
    """Place the probe as a batch instance with this `config.env`, wait for it to complete, and read its report.
    It runs on this interpreter by its absolute path (a `python3` found on PATH may be a shim, pyenv's, that adds
    variables of its own) unless given another `python`."""
    node = agent_node([python, "probe.py", str(out)])
    node["config"]["env"] = env
    bundle = bundles.put({"probe.py": probe, "data/nested/blob.bin": b"\x00\x01"})
    p = replace(placement(node, bundle=bundle), batch=True)
    runtime.place(p)
    facts.until(Fact(p.instance_id, FactKind.COMPLETED))
    report: dict[str, Any] = json.loads(out.read_text())
    return report


def test_an_agent_sees_the_documented_variables_and_its_config_env_and_none_of_the_workers(
    start_worker: Callable[..., Worker],
    runtime: RedisRuntime,
    facts: Facts,
    bundles: RedisBundleStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(WORKER_ONLY, "only the worker has this")
    start_worker()

    report = run_probe(bundles, runtime, facts, tmp_path / "report.json", {"MN_GREETING": "hi", "LANG": "C.utf8"})

    env = report["env"]
    root = Path(env["MN_BUNDLE_DIR"]).parent
    assert WORKER_ONLY not in env
    assert set(env) == WORKER_VARIABLES | {"PATH", "LANG", "MN_GREETING"}
    assert env["MN_GREETING"] == "hi"
    assert env["LANG"] == "C.utf8", "config.env may set LANG"
    assert env["PATH"] == os.environ["PATH"]
    assert root.parent == tmp_path / "n1"
    assert (env["HOME"], env["TMPDIR"], report["cwd"]) == (str(root / "home"), str(root / "tmp"), str(root / "bundle"))
    assert Path(report["scratch"]).parent == root / "tmp", "tempfile writes under TMPDIR"
    assert env["MN_AGENT_ID"] == "web" and env["MN_DEPLOYMENT_KEY"] == "hello" and env["PORT"].isdigit()
    wait_for(lambda: not root.exists(), what="the instance directory to be removed")


PORT_PROBE = b"""
import json, os, sys
from pathlib import Path
from backends.loopback import reserved_port

port = int(os.environ["PORT"])
try:
    with reserved_port(lambda: port):
        reserved = True
except OSError:
    reserved = False
Path(sys.argv[1]).write_text(json.dumps({"port": port, "reserved_by_another": reserved}))
"""


def test_an_agents_port_is_reserved_for_its_run_and_free_again_after_it(
    start_worker: Callable[..., Worker],
    runtime: RedisRuntime,
    facts: Facts,
    bundles: RedisBundleStore,
    tmp_path: Path,
) -> None:
    start_worker()

    report = run_probe(bundles, runtime, facts, tmp_path / "report.json", {}, probe=PORT_PROBE)

    assert report["reserved_by_another"] is False, "while the agent runs, nobody else can reserve its PORT"
    wait_for(lambda: reservable(report["port"]), what="the PORT to be released once the run ended")


def reservable(port: int) -> bool:
    try:
        with reserved_port(lambda: port):
            return True
    except OSError:
        return False


def test_without_config_env_an_agent_gets_lang_c_utf8(
    start_worker: Callable[..., Worker], runtime: RedisRuntime, facts: Facts, bundles: RedisBundleStore, tmp_path: Path
) -> None:
    start_worker()

    env = run_probe(bundles, runtime, facts, tmp_path / "report.json", {})["env"]

    assert env["LANG"] == "C.UTF-8"
    assert set(env) == WORKER_VARIABLES | {"PATH", "LANG"}


def test_payloads_are_0600_in_0700_directories_only_the_agents_user_reads(
    start_worker: Callable[..., Worker], runtime: RedisRuntime, facts: Facts, bundles: RedisBundleStore, tmp_path: Path
) -> None:
    start_worker()

    report = run_probe(bundles, runtime, facts, tmp_path / "report.json", {})

    assert report["modes"] == {
        ".": "0o700",
        "bundle": "0o700",
        "bundle/probe.py": "0o600",
        "bundle/data": "0o700",
        "bundle/data/nested": "0o700",
        "bundle/data/nested/blob.bin": "0o600",
        "home": "0o700",
        "home/note": "0o644",  # what the agent itself wrote, under its own umask
        "tmp": "0o700",
        Path(report["scratch"]).relative_to(Path(report["env"]["MN_BUNDLE_DIR"]).parent).as_posix(): "0o600",
    }


@pytest.mark.parametrize(
    "env",
    [{"A": 1}, {"A=B": "x"}, {"PORT": "80"}, {"A": "x\0y"}, ["A=1"]],
    ids=["not-a-string", "name-with-equals", "worker-variable", "nul-in-value", "not-an-object"],
)
def test_a_placement_whose_config_env_no_process_can_take_fails_and_runs_nothing(
    start_worker: Callable[..., Worker],
    runtime: RedisRuntime,
    facts: Facts,
    bundles: RedisBundleStore,
    tmp_path: Path,
    env: Any,
) -> None:
    start_worker()
    ran = tmp_path / "ran"
    node = agent_node([sys.executable, "-c", f"open({str(ran)!r}, 'w')"])
    node["config"]["env"] = env
    p = placement(node)

    runtime.place(p)

    kinds = facts.until(Fact(p.instance_id, FactKind.FAILED))

    assert kinds[-1:] == ["failed"] and FactKind.RUNNING not in kinds  # placed (or restarted, if taken up at start)
    assert not ran.exists()
    assert [d.name for d in (tmp_path / "n1").iterdir()] == ["logs"], "no instance directory was made"


# ---- --run-as ------------------------------------------------------------------------------------------------


@pytest.fixture
def open_workdir() -> Iterator[Path]:
    """A workdir another user can reach (the test's own directory is root's alone): 0711 under /tmp, with a
    directory `out` where anyone may write a report."""
    directory = Path(tempfile.mkdtemp(prefix="mn-run-as-"))
    directory.chmod(0o711)
    (directory / "out").mkdir(mode=0o1777)
    (directory / "out").chmod(0o1777)
    yield directory
    shutil.rmtree(directory)


def test_run_as_runs_the_agent_as_that_user_with_its_files_and_nothing_of_the_workers(
    open_workdir: Path,  # first: removed after the worker stopped
    start_worker: Callable[..., Worker],
    runtime: RedisRuntime,
    facts: Facts,
    bundles: RedisBundleStore,
) -> None:
    nobody = AgentUser.named("nobody")
    start_worker(workdir=open_workdir / "n1", run_as=nobody)

    # /usr/bin/python3: the test's interpreter lives under /root, which nobody may not search
    report = run_probe(bundles, runtime, facts, open_workdir / "out" / "report.json", {}, python="/usr/bin/python3")

    assert (report["uid"], report["gid"], report["groups"]) == (nobody.uid, nobody.gid, [])
    assert report["owners"] and all(owner == [nobody.uid, nobody.gid] for owner in report["owners"].values())
    assert report["modes"]["."] == "0o700" and report["modes"]["bundle/probe.py"] == "0o600"
    assert set(report["env"]) == WORKER_VARIABLES | {"PATH", "LANG"}
    root = Path(report["env"]["MN_BUNDLE_DIR"]).parent
    wait_for(lambda: not root.exists(), what="the instance directory to be removed")


def test_run_as_refuses_an_unknown_user_or_an_unreachable_workdir_in_one_line(tmp_path: Path) -> None:
    cli = Path(sys.executable).with_name("mn-deploy")
    key = order_key_file(tmp_path)
    common = ["agent", "worker", "--node", "n1", "--order-key-file", str(key)]

    unknown = subprocess.run(
        [str(cli), *common, "--run-as", "no-such-user-here", "--workdir", str(tmp_path / "w")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    hidden = subprocess.run(
        [str(cli), *common, "--run-as", "nobody", "--workdir", str(tmp_path / "w")],
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert (unknown.returncode, unknown.stderr) == (
        2,
        "error: --run-as no-such-user-here: no user 'no-such-user-here' on this host\n",
    )
    blocked = next(p for p in (*reversed(tmp_path.parents), tmp_path) if not p.stat().st_mode & 0o001)  # root's
    assert (hidden.returncode, hidden.stderr) == (
        2,
        f"error: --run-as nobody: user nobody cannot search {blocked}, on the way to --workdir\n",
    )
    assert not (tmp_path / "w").exists(), "nothing was made"
