"""`mn-deploy deployment logs` on a whole stack with two workers: the example bundle examples/bundles/batch-hello.

Its agent prints one line (`hello from batch vN from <agent> (version N)`) and exits 0, and waits before that while
`$MN_BATCH_OUT/hold-<version>` exists; the test deploys a copy of the manifests that declares MN_BATCH_OUT in
`config.env` (the `batch` fixture). Each instance's log then holds the worker's note of the start, the agent's
line on stdout and the note of the exit.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from backends.loopback import free_port
from mn_deploy.live_cli import mn_deploy_command
from tests.e2e.conftest import World
from tests.polling import wait_for

pytestmark = pytest.mark.e2e

KEY = "batch-hello"
AGENTS = ["job-0", "job-1"]


def logs(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    """`mn-deploy deployment logs` as a user runs it, piped (plain lines)."""
    command = [*mn_deploy_command(), "deployment", "logs", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env_of(world), timeout=30)


def env_of(world: World) -> dict[str, str]:
    return {**os.environ, "MN_REDIS_URL": world.stack.redis_url, "MN_CLI_OUTPUT": "plain"}


def shown(stdout: str) -> list[tuple[str, str, str]]:
    """(agent, stream, text) of each `Log: AGENT/INSTANCE [STREAM] TEXT` line."""
    found = []
    for line in stdout.splitlines():
        assert line.startswith("Log: "), line
        who, stream, text = line.removeprefix("Log: ").split(" ", 2)
        found.append((who.split("/")[0], stream.strip("[]"), text))
    return found


def completed(world: World, version: str) -> None:
    """Wait until each agent of the version has printed its line and exited (as its log shows)."""

    def done() -> bool:
        lines = shown(logs(world, KEY, "--version", version).stdout)
        return sum(line == (a, "worker", "exited with code 0") for a in AGENTS for line in lines) == len(AGENTS)

    wait_for(done, what=f"version {version}'s agents to finish")


def test_logs_shows_each_instances_lines_across_nodes_by_version_agent_and_tail(batch: World, batch_out: Path) -> None:
    world = batch
    world.deploy(f"{KEY}/v1.json")
    completed(world, "1")
    (batch_out / "hold-2").touch()  # v2's agents start, and wait
    world.deploy(f"{KEY}/v2.json")

    v1 = logs(world, KEY, "--version", "1")
    assert v1.returncode == 0, v1.stderr
    for agent in AGENTS:
        mine = [(stream, text) for who, stream, text in shown(v1.stdout) if who == agent]
        assert [t.split(", pid ")[0] for s, t in mine if s == "worker"] == ["run 1 started", "exited with code 0"]
        assert [(s, t) for s, t in mine if s != "worker"] == [
            ("stdout", f"hello from batch v1 from {agent} (version 1)")
        ]

    as_json = [json.loads(line) for line in logs(world, KEY, "--version", "1", "--json").stdout.splitlines()]
    assert {(d["agent_id"], d["stream"], d["line"]) for d in as_json} >= {
        (a, "stdout", f"hello from batch v1 from {a} (version 1)") for a in AGENTS
    }
    assert all(d["node"] in world.stack.nodes for d in as_json), "each line says the node it was written on"

    tail = shown(logs(world, KEY, "--version", "1", "--tail", "1").stdout)
    assert sorted(tail) == [(a, "worker", "exited with code 0") for a in AGENTS]

    one = shown(logs(world, KEY, "--version", "1", "--agent", "job-1").stdout)
    assert {who for who, _, _ in one} == {"job-1"} and (
        "job-1",
        "stdout",
        "hello from batch v1 from job-1 (version 1)",
    ) in one

    # Without --version: the current version, 2, whose agents have started and not printed yet.
    current = wait_for(lambda: len(s := shown(logs(world, KEY).stdout)) == len(AGENTS) and s, what="v2's starts")
    assert sorted((who, stream) for who, stream, _ in current) == [(a, "worker") for a in AGENTS]


def test_follow_sees_a_line_written_after_it_started_and_ctrl_c_exits_0(batch: World, batch_out: Path) -> None:
    world = batch
    (batch_out / "hold-1").touch()
    world.deploy(f"{KEY}/v1.json")
    wait_for(lambda: len(shown(logs(world, KEY).stdout)) == len(AGENTS), what="v1's agents to start")
    command = [*mn_deploy_command(), "deployment", "logs", KEY, "--follow"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env_of(world))
    seen: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [seen.put(line) for line in process.stdout or []])
    reader.start()
    try:
        printed: list[str] = []

        def has(text: str) -> bool:
            while not seen.empty():
                printed.append(seen.get())
            return any(text in line for line in printed)

        wait_for(lambda: has("run 1 started"), what="the lines already there")
        (batch_out / "hold-1").unlink()  # the agents now print their line and exit
        for agent in AGENTS:
            wait_for(lambda agent=agent: has(f"[stdout] hello from batch v1 from {agent}"), what=f"{agent}'s new line")

        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
        assert process.stderr is not None and process.stderr.read() == ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join()


def test_errors_are_one_line_with_a_non_zero_exit(batch: World) -> None:
    world = batch
    world.deploy(f"{KEY}/v1.json")

    cases = {
        ("nope",): (2, "error: no deployment has key 'nope'"),
        (KEY, "--version", "9"): (2, f"error: {KEY!r} has no version '9'"),
        (KEY, "--version", "1", "--agent", "job-7"): (
            1,
            f"error: version 1 of {KEY!r} has no instance of agent 'job-7'",
        ),
        (KEY, "--tail", "-1"): (2, "error: Invalid value for '--tail': -1 is not in the range x>=0."),
    }
    for args, (code, message) in cases.items():
        result = logs(world, *args)
        assert (result.returncode, result.stderr) == (code, message + "\n"), args

    unreachable = logs(world, KEY, "--redis", f"redis://127.0.0.1:{free_port()}/0")
    assert unreachable.returncode == 3
    assert unreachable.stderr.startswith("error: Redis at redis://127.0.0.1:") and unreachable.stderr.count("\n") == 1
