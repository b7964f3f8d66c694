"""Instance logs (backends/live/worker/logs.py): files rotated within their bounds, streams kept apart, Redis fed
without ever stalling an agent, and a real worker logging its agents through restarts and its own shutdown.

Nothing sleeps to synchronise: tests wait for lines in Redis or for facts, each with a deadline.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from backends.live.controller.runtime import RedisRuntime
from backends.live.worker.daemon import Worker
from backends.live.worker.logs import (
    LINE_MAX_BYTES,
    LINES_KEPT,
    InstanceLog,
    LogLine,
    LogSource,
    RedisLogShipper,
    log_member,
    prune,
)
from backends.process import ProcessGroup
from backends.redis.client import connect
from backends.redis.server import LocalRedisServer
from mn_deploy_core.ports import Fact, FactKind, RestartPolicy
from tests.conftest import RedisServerFactory
from tests.live.conftest import DEADLINE_S, Facts
from tests.live.test_worker import KEYS, agent_node, agent_pids, placement, run_token, start_worker  # noqa: F401
from tests.polling import wait_for


def lines_of(path: Path) -> list[tuple[str, str]]:
    """(stream, text) of each line of a log file, without its time stamp."""
    return [tuple(line.split(" ", 2)[1:]) for line in path.read_text().splitlines()]


def files_oldest_first(log: InstanceLog) -> list[Path]:
    rotated = sorted(log.path.parent.glob(f"{log.path.name}.*"), key=lambda p: -int(p.suffix[1:]))
    return [*rotated, log.path]


def write_through_pipes(log: InstanceLog, stdout: bytes, stderr: bytes) -> None:
    """A run whose child is this test: it writes into the run's pipes and closes them, as an exiting agent does."""
    with log.run() as (out, err):
        os.write(out, stdout)
        os.write(err, stderr)
    log.ended(0)


# ---- files -------------------------------------------------------------------------------------


def test_each_line_keeps_its_stream_and_a_partial_last_line_is_kept(tmp_path: Path) -> None:
    sent: list[LogLine] = []
    log = InstanceLog("dep_a_1.web.0", tmp_path, sent.append)

    write_through_pipes(log, b"one\ntwo\r\nthree", b"oops\n")
    log.close()

    in_file = lines_of(log.path)
    assert [line for line in in_file if line[0] == "stdout"] == [
        ("stdout", "one"),
        ("stdout", "two"),
        ("stdout", "three"),
    ]
    assert ("stderr", "oops") in in_file
    assert in_file[-1] == ("worker", "exited with code 0")  # after every line the run wrote
    assert [(line.stream, line.text) for line in sent] == in_file


def test_a_file_rotates_at_its_cap_keeping_its_backups_and_the_newest_lines(tmp_path: Path) -> None:
    log = InstanceLog("dep_a_1.web.0", tmp_path, lambda line: None, max_bytes=300, backups=2)

    for n in range(100):
        log.note(f"line {n:03d}")
    log.close()

    files = files_oldest_first(log)
    assert [f.name for f in files] == ["dep_a_1.web.0.log.2", "dep_a_1.web.0.log.1", "dep_a_1.web.0.log"]
    assert all(0 < f.stat().st_size <= 300 for f in files)
    kept = [text for f in files for _, text in lines_of(f)]
    assert kept == [f"line {n:03d}" for n in range(100 - len(kept), 100)]  # the newest, none missing between


def test_a_line_longer_than_the_cap_is_cut_into_lines_of_the_cap(tmp_path: Path) -> None:
    log = InstanceLog("dep_a_1.web.0", tmp_path, lambda line: None)
    write_through_pipes(log, b"x" * (LINE_MAX_BYTES * 2 + 5) + b"\n", b"")
    log.close()

    assert [len(text) for stream, text in lines_of(log.path) if stream == "stdout"] == [
        LINE_MAX_BYTES,
        LINE_MAX_BYTES,
        5,
    ]


def test_a_reopened_log_appends_and_old_files_are_pruned(tmp_path: Path) -> None:
    first = InstanceLog("i", tmp_path, lambda line: None)
    first.note("before")
    first.close()
    again = InstanceLog("i", tmp_path, lambda line: None)
    again.note("after")
    again.close()
    assert [text for _, text in lines_of(again.path)] == ["before", "after"]

    os.utime(again.path, (0, 0))
    assert prune(tmp_path) == [again.path]
    assert not again.path.exists()


# ---- Redis -------------------------------------------------------------------------------------


def test_an_agent_writing_fast_is_never_stalled_by_a_redis_that_is_gone_and_every_line_is_accounted_for(
    redis_server_factory: RedisServerFactory, tmp_path: Path
) -> None:
    server = redis_server_factory()
    client = connect(server.url)
    shipper = RedisLogShipper(client, queued_max=50)
    source = LogSource(KEYS.instance_log("i"), KEYS.version_logs("k", "1"), log_member("web", "i", "n1"))
    log = InstanceLog("i", tmp_path, lambda line: shipper.put(source, line), max_bytes=64 * 1024 * 1024)
    server.kill()  # Redis gone: nothing can be sent while the agent writes

    script = "import sys\nfor n in range(20000):\n    print('o' * 99)\n    print('e' * 99, file=sys.stderr)\n"
    with log.run() as (out, err):
        child = ProcessGroup([sys.executable, "-c", script], cwd=tmp_path, env=os.environ, output=out, errors=err)
    assert child.wait(DEADLINE_S) == 0, "4 MB through two 64 KiB pipes: the agent was never stalled"
    log.ended(0)
    log.close()
    written = len(lines_of(log.path))
    assert written == 40_001  # the file has every line: all the agent wrote, and the worker's exit note

    back = LocalRedisServer(server.directory, port=server.port)  # back, empty, on the same port
    back.start()
    try:
        note = "lines not sent to Redis (the worker's queue was full); the node's log file has them"

        def accounted() -> list[dict[str, str]] | None:
            entries = [fields for _, fields in client.xrange(KEYS.instance_log("i"))]
            notes = [int(f["line"].split()[0]) for f in entries if f["line"].endswith(note)]
            return entries if notes and len(entries) - len(notes) + sum(notes) == written else None

        entries = wait_for(accounted, DEADLINE_S, "every line sent or counted as not sent")
        sent = sum(not f["line"].endswith(note) for f in entries)
        assert sent <= 2 * 50, "no more lines waited than the queue holds, and one batch taken from it"
        assert entries[-1] == {"stream": "worker", "line": "exited with code 0", "t_ms": entries[-1]["t_ms"]}
        assert client.zrange(KEYS.version_logs("k", "1"), 0, -1) == [log_member("web", "i", "n1")]
        assert min(client.pttl(KEYS.instance_log("i")), client.pttl(KEYS.version_logs("k", "1"))) > 0
    finally:
        shipper.close()
        client.close()
        back.stop()


def test_redis_keeps_about_the_newest_lines_of_an_instance(real_redis: redis.Redis, tmp_path: Path) -> None:
    shipper = RedisLogShipper(real_redis)
    source = LogSource(KEYS.instance_log("i"), KEYS.version_logs("k", "1"), log_member("web", "i", "n1"))
    for n in range(3 * LINES_KEPT):
        shipper.put(source, LogLine("stdout", f"line {n}", 1.0))
    shipper.close()

    entries = real_redis.xrange(KEYS.instance_log("i"))
    assert LINES_KEPT <= len(entries) < 2 * LINES_KEPT
    assert entries[-1][1]["line"] == f"line {3 * LINES_KEPT - 1}"


# ---- a real worker -----------------------------------------------------------------------------


@pytest.fixture
def stream(real_redis: redis.Redis) -> Callable[[str], list[tuple[str, str]]]:
    def read(instance_id: str) -> list[tuple[str, str]]:
        return [(f["stream"], f["line"]) for _, f in real_redis.xrange(KEYS.instance_log(instance_id))]

    return read


def test_a_worker_logs_its_agents_streams_apart_through_restarts_to_file_and_redis(
    start_worker: Callable[..., Worker],  # noqa: F811
    runtime: RedisRuntime,
    facts: Facts,
    real_redis: redis.Redis,
    tmp_path: Path,
    stream: Callable[[str], list[tuple[str, str]]],
) -> None:
    start_worker("n1")
    command = ["python3", "-c", "import sys; print('to out'); print('to err', file=sys.stderr); exit(3)"]
    p = placement(agent_node(command), restart=RestartPolicy(attempts=1, delay_ms=50))

    runtime.place(p)
    facts.until(Fact(p.instance_id, FactKind.FAILED))

    notes = ["run 1 started", "exited with code 3", "restart 1 of 1", "run 2 started", "exited with code 3"]
    sent = wait_for(lambda: len(s := stream(p.instance_id)) == len(notes) + 4 and s, what="both runs in Redis")
    for lines in (sent, lines_of(tmp_path / "n1" / "logs" / f"{p.instance_id}.log")):
        assert [text.split(", pid ")[0] for stream_, text in lines if stream_ == "worker"] == notes
        runs = [lines[1:3], lines[6:8]]  # between each start and its exit; stdout and stderr in either order
        assert [sorted(run) for run in runs] == [[("stderr", "to err"), ("stdout", "to out")]] * 2
    index = real_redis.zrange(KEYS.version_logs(p.deployment_key, p.deployment_version), 0, -1)
    assert index == [log_member(p.agent_id, p.instance_id, "n1")]


def test_what_an_agent_writes_while_its_worker_shuts_down_is_kept(
    redis_server: LocalRedisServer,
    runtime: RedisRuntime,
    tmp_path: Path,
    stream: Callable[[str], list[tuple[str, str]]],
) -> None:
    client = connect(redis_server.url)
    worker = Worker(client, "n1", namespace=KEYS.namespace, workdir=tmp_path / "n1", heartbeat_ms=50, grace_ms=5000)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), name="worker n1", daemon=True)
    thread.start()
    wait_for(lambda: client.exists(KEYS.node_heartbeat("n1")), what="node n1 to register")
    script = (
        "import signal, sys\n"
        "def bye(*_):\n    print('bye'); print('farewell', file=sys.stderr); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, bye)\nprint('ready', flush=True)\nsignal.pause()\n"
    )
    p = placement(agent_node(["python3", "-c", script]))
    runtime.place(p)
    wait_for(lambda: ("stdout", "ready") in stream(p.instance_id), what="the agent to be ready")

    stop.set()
    thread.join(DEADLINE_S)
    client.close()

    assert not thread.is_alive() and not agent_pids(p.instance_id)
    expected = {("stdout", "bye"), ("stderr", "farewell"), ("worker", "exited with code 0")}
    assert expected <= set(stream(p.instance_id)), "sent to Redis before the worker ended"
    assert expected <= set(lines_of(tmp_path / "n1" / "logs" / f"{p.instance_id}.log"))
