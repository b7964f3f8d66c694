"""`mn-deploy deployment logs`: the lines a deployment key's instances wrote, on every node, read from Redis.

A worker keeps each instance's stdout and stderr in a file on its own node and appends every line to the instance's
stream in Redis (backends/live/worker/logs.py); this reads those streams, so it works from any machine that reaches
the controller's Redis (`--redis`, else MN_REDIS_URL), without a controller running.

Which instances: those of one version of the key (the current one unless `--version`), as the live instance
records name them, and those that logged under that version and have gone since (each version's index of logged
instances). `--follow` blocks on the streams (XREAD BLOCK), taking up instances that start logging meanwhile.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import click
import redis

from backends.protocol import wire
from backends.redis.keys import Keys, namespace_from_env
from backends.redis.store import RedisStore
from mn_deploy.output import Output
from mn_deploy.redis_reader import EXIT_NONE_FOUND, reading, redis_option
from mn_deploy.usage import EXIT_USAGE


class Refused(Exception):
    """A selection that names nothing: one line, and its exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message, self.code = message, code


@dataclass(frozen=True, slots=True, order=True)
class Instance:
    agent_id: str
    instance_id: str
    node: str = ""


@dataclass(frozen=True, slots=True)
class Line:
    instance: Instance
    entry_id: str
    stream: str
    text: str
    t_ms: int

    def shown(self) -> str:
        return f"{self.instance.agent_id}/{self.instance.instance_id} [{self.stream}] {self.text}"

    def json(self) -> str:
        return json.dumps(
            {
                "agent_id": self.instance.agent_id,
                "instance_id": self.instance.instance_id,
                "node": self.instance.node or None,
                "stream": self.stream,
                "line": self.text,
                "t_ms": self.t_ms,
                "id": self.entry_id,
            }
        )


@click.command("logs")
@click.argument("key")
@click.option("--agent", "agent_id", help="Only this agent's instances.")
@click.option("--version", help="The instances of this version of KEY (default: its current version).")
@click.option("--follow", is_flag=True, help="Keep printing new lines until interrupted (Ctrl-C exits 0).")
@click.option("--tail", type=click.IntRange(min=0), help="Only the last N lines of each instance (default: all kept).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document a line.")
@redis_option
def logs(
    key: str, agent_id: str | None, version: str | None, follow: bool, tail: int | None, as_json: bool, redis_url: str
) -> None:
    """The stdout and stderr lines of deployment KEY's instances, on every node: each line as
    `AGENT/INSTANCE [STREAM] TEXT`, STREAM being stdout, stderr or worker (a start, a restart, an exit).

    \b
    Exit codes: 0 done (also on Ctrl-C with --follow), 1 no instance of the
    selection has a record or logged, 2 bad usage or an unknown key or version,
    3 Redis could not be reached.
    """
    out = Output.detect(as_json)
    with reading(out, redis_url) as client:
        try:
            reader = LogReader(client, key, version, agent_id)
            _show(out, reader.start(tail))
            while follow:
                _show(out, reader.follow())
        except Refused as error:
            out.exit(error.message, error.code)
        except KeyboardInterrupt:
            pass  # --follow ends with Ctrl-C


class LogReader:
    """The streams of a selection of instances, read once and then followed from where the reading stopped."""

    def __init__(self, client: redis.Redis, key: str, version: str | None, agent_id: str | None) -> None:
        self._client = client
        self._keys = Keys(namespace_from_env())
        self._key = key
        self._agent_id = agent_id
        self._version = self._resolve(version)
        self._block_ms = wire.max_block_ms(client) or 1000
        self._cursors: dict[str, str] = {}  # instance id -> the last entry read of its stream
        self._instances = {i.instance_id: i for i in self._recorded()}
        self._instances.update((i.instance_id, i) for i in self._logged())  # with the node it logged on
        if not self._instances:
            agent = f" of agent {agent_id!r}" if agent_id is not None else ""
            raise Refused(f"version {self._version} of {key!r} has no instance{agent}", EXIT_NONE_FOUND)

    def start(self, tail: int | None) -> list[Line]:
        """Each instance's lines kept (its last `tail`), oldest first across instances."""
        lines: list[Line] = []
        for instance in sorted(self._instances.values()):
            stream = self._keys.instance_log(instance.instance_id)
            if tail is None:
                entries = self._client.xrange(stream)
            else:
                entries = list(reversed(self._client.xrevrange(stream, count=tail))) if tail else []
            last = entries[-1:] or self._client.xrevrange(stream, count=1)
            self._cursors[instance.instance_id] = str(last[0][0]) if last else "0-0"
            lines += self._lines(instance, entries)
        return sorted(lines, key=lambda line: (line.t_ms, line.instance, line.entry_id))

    def follow(self) -> list[Line]:
        """The lines written since, waiting for them at most one block; then instances that began to log."""
        by_stream = {self._keys.instance_log(i): self._instances[i] for i in self._cursors}
        cursors = {stream: self._cursors[i.instance_id] for stream, i in by_stream.items()}
        reply = self._client.xread(cursors, block=self._block_ms)
        lines: list[Line] = []
        for stream, entries in reply or []:
            instance = by_stream[stream]
            self._cursors[instance.instance_id] = str(entries[-1][0])
            lines += self._lines(instance, entries)
        if not reply:
            for instance in self._logged():
                if instance.instance_id not in self._cursors:
                    self._instances[instance.instance_id] = instance
                    self._cursors[instance.instance_id] = "0-0"
        return lines

    def _resolve(self, version: str | None) -> str:
        store = RedisStore(self._client)
        current_id = store.current_deployment_id(self._key)
        current = store.load_deployment(current_id) if current_id else None
        if current is None:
            raise Refused(f"no deployment has key {self._key!r}", EXIT_USAGE)
        if version is None:
            found = current.current_version or current.target_version
            if found is None:
                raise Refused(f"{self._key!r} has no current version; name one with --version", EXIT_USAGE)
            return found
        if store.load_version(self._key, version) is None:
            raise Refused(f"{self._key!r} has no version {version!r}", EXIT_USAGE)
        return version

    def _selected(self, instances: Iterable[Instance]) -> set[Instance]:
        return {i for i in instances if self._agent_id is None or i.agent_id == self._agent_id}

    def _recorded(self) -> set[Instance]:
        """The live instance records of the version (placed, maybe not logging yet)."""
        records = RedisStore(self._client).list_instances()
        node_of = self._client.hgetall(self._keys.assigned)
        return self._selected(
            Instance(r.agent_id, r.instance_id, str(node_of.get(r.instance_id, "")))
            for r in records
            if r.deployment_key == self._key and r.version == self._version
        )

    def _logged(self) -> set[Instance]:
        """The instances that logged under the version, live or gone (Keys.version_logs)."""
        members = self._client.zrange(self._keys.version_logs(self._key, self._version), 0, -1)
        return self._selected(Instance(**json.loads(str(m))) for m in members)

    @staticmethod
    def _lines(instance: Instance, entries: Sequence[tuple[Any, dict[str, str]]]) -> list[Line]:
        return [
            Line(instance, str(entry_id), f.get("stream", ""), f.get("line", ""), int(f.get("t_ms") or 0))
            for entry_id, f in entries
        ]


def _show(out: Output, lines: Sequence[Line]) -> None:
    out.show_lines([line.json() for line in lines], "Log", [line.shown() for line in lines])
