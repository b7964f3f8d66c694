"""In-memory Store and Registry: the ports' reference behaviour, for tests and simulations."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from mn_deploy_core.discovery import visible
from mn_deploy_core.errors import ConflictError
from mn_deploy_core.lifecycle import Life
from mn_deploy_core.ports import Commit, Recordable, Role, ServiceInstance, write_in_order
from mn_deploy_core.records import (
    DeploymentRecord,
    Event,
    InstanceRecord,
    VersionRecord,
    deployment_number,
    version_order,
)
from mn_deploy_core.trace import Input, assemble


class MemoryStore:
    """Keeps snapshots of records; each save checks the revision it was given."""

    def __init__(self) -> None:
        self._numbers = itertools.count(1)
        self._version_seq: dict[str, int] = defaultdict(int)
        self._deployments: dict[str, DeploymentRecord] = {}
        self._events: dict[str, list[Event]] = defaultdict(list)
        self._current: dict[str, str] = {}
        self._versions: dict[str, dict[str, VersionRecord]] = defaultdict(dict)
        self._instances: dict[str, Recordable] = {}
        self._lives: dict[str, Recordable] = {}

    def allocate_deployment_number(self, key: str) -> int:
        return next(self._numbers)

    def allocate_version(self, key: str) -> str:
        existing = max((version_order(v)[0] for v in self._versions[key]), default=0)
        self._version_seq[key] = max(self._version_seq[key], existing) + 1
        return str(self._version_seq[key])

    def save_deployment(self, record: DeploymentRecord, new_events: Sequence[Event]) -> int:
        stored = self._deployments.get(record.deployment_id)
        actual = stored.revision if stored else 0
        if record.revision != actual:
            raise ConflictError(record.deployment_id, record.revision, actual)
        snapshot = record.snapshot()
        snapshot.revision = actual + 1
        self._deployments[record.deployment_id] = snapshot
        if stored and self._current.get(stored.deployment_key) == record.deployment_id:
            del self._current[stored.deployment_key]  # retaken below unless the record moved to another key
        self._events[record.deployment_id].extend(new_events)
        current = self._current.get(record.deployment_key)
        if current is None or deployment_number(current) <= deployment_number(record.deployment_id):
            self._current[record.deployment_key] = record.deployment_id
        return snapshot.revision

    def load_deployment(self, deployment_id: str) -> DeploymentRecord | None:
        stored = self._deployments.get(deployment_id)
        return stored.snapshot() if stored else None

    def current_deployment_id(self, key: str) -> str | None:
        return self._current.get(key)

    def list_deployments(
        self, key: str | None = None, status: str | None = None, *, after: str | None = None, limit: int | None = None
    ) -> list[DeploymentRecord]:
        found = (
            r
            for deployment_id, r in sorted(self._deployments.items())
            if (after is None or deployment_id > after)
            and (key is None or r.deployment_key == key)
            and (status is None or r.status == status)
        )
        return [r.snapshot() for r in itertools.islice(found, limit)]

    def deployment_events(self, deployment_id: str) -> list[Event]:
        return list(self._events.get(deployment_id, ()))

    def save_version(self, record: VersionRecord) -> None:
        self._versions[record.deployment_key][record.version] = record

    def load_version(self, key: str, version: str) -> VersionRecord | None:
        return self._versions.get(key, {}).get(version)

    def list_versions(self, key: str) -> list[VersionRecord]:
        versions = self._versions.get(key, {})
        return [versions[v] for v in sorted(versions, key=version_order)]

    def commit(self, commit: Commit) -> list[int]:
        return write_in_order(self, commit)

    def save_instances(self, changed: Sequence[Recordable], removed: Sequence[str]) -> None:
        """Keeps each instance as given: its record is made when read (`Commit` says why that is safe)."""
        for instance in changed:
            self._instances[instance.instance_id] = instance
            self._lives[instance.instance_id] = instance
        for instance_id in removed:
            self._instances.pop(instance_id, None)

    def list_instances(self) -> list[InstanceRecord]:
        return [i.to_record() for i in self._instances.values()]

    def instance_lives(self) -> list[InstanceRecord]:
        """The last record of every instance ever saved, stopped ones included, in placement order: the
        whole lifecycle a simulation reports."""
        return [i.to_record() for i in self._lives.values()]

    def lives(self) -> list[Life]:
        """`instance_lives` without making records: the instances as kept, for a reader of their lifecycle alone
        (a large simulation's result would hold a record of each beside its row)."""
        return list(self._lives.values())


class MemoryRecorder:
    """The `Recorder` that keeps every input in a list, for the simulator's traces and for tests."""

    def __init__(self) -> None:
        self.inputs: list[Input] = []

    def record(self, deployment_id: str, now: float, entry: Mapping[str, Any]) -> None:
        self.inputs.append(Input(deployment_id, now, entry))

    def trace(self, store: MemoryStore, source: str = "sim") -> dict[str, Any]:
        """Everything `store` holds as one trace, times as the driver gave them (a simulation's start is 0)."""
        records = store.list_deployments()
        keys = list(dict.fromkeys(r.deployment_key for r in records))
        return assemble(
            source=source,
            deployments=[(r, store.deployment_events(r.deployment_id)) for r in records],
            versions=[v for key in keys for v in store.list_versions(key)],
            inputs=self.inputs,
            lives=store.instance_lives(),
            origin_ms=0.0,
            origin=None,
        )


class MemoryRegistry:
    """Service instances by instance id; lookups apply the discovery rule. The passing flag is kept apart, as it
    changes with every verdict and a registration does not."""

    def __init__(self) -> None:
        self._services: dict[str, list[ServiceInstance]] = {}
        self._passing: dict[str, bool] = {}

    def register(self, service: ServiceInstance) -> None:
        """Add a service to its instance, replacing an earlier registration of the same name."""
        others = [s for s in self._services.get(service.instance_id, ()) if s.name != service.name]
        self._services[service.instance_id] = [*others, service]
        self._passing[service.instance_id] = service.passing  # one flag per instance, as Redis keeps it

    def deregister(self, instance_id: str) -> None:
        self._services.pop(instance_id, None)
        self._passing.pop(instance_id, None)

    def set_passing(self, instance_id: str, passing: bool) -> None:
        if instance_id in self._services:
            self._passing[instance_id] = passing

    def promote(self, key: str, version: str) -> None:
        for instance_id, services in self._services.items():
            if services[0].deployment_key == key and services[0].deployment_version == version:
                self._services[instance_id] = [replace(s, deployment_role=Role.PRIMARY) for s in services]

    def lookup(
        self,
        name: str,
        *,
        include_candidates: bool = False,
        role: str | None = None,
        passing_only: bool = True,
    ) -> list[ServiceInstance]:
        seen = (self._seen(s) for services in self._services.values() for s in services if s.name == name)
        return [
            s for s in seen if visible(s, include_candidates=include_candidates, role=role, passing_only=passing_only)
        ]

    def _seen(self, service: ServiceInstance) -> ServiceInstance:
        """A registration with its instance's passing flag as it is now."""
        passing = self._passing[service.instance_id]
        return service if service.passing == passing else replace(service, passing=passing)
