"""Which replayed deployment stands for which recorded one.

Deployment ids differ between worlds (a live store numbers deployments its own way, a memory store counts across
keys), so deployments are paired by their order of creation per key: the third deployment of a key in the replay
stands for the third one of that key in the trace. Instance and job ids follow from their deployment's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from backends.memory import MemoryStore
from mn_deploy_core.records import deployment_number, job_id_for


class Pairing:
    def __init__(self, recorded: Mapping[str, Sequence[str]], store: MemoryStore) -> None:
        """`recorded`: each key's recorded deployment ids in creation order; `store`: the replay's."""
        self._recorded = recorded
        self._key_of = {d: key for key, ids in recorded.items() for d in ids}
        self._store = store

    def replayed(self, key: str, pending: str | None = None) -> list[str]:
        """The replay's deployments of `key` so far, in creation order (`pending`: one created by the call
        under way, not yet committed)."""
        ids = {r.deployment_id for r in self._store.list_deployments(key)}
        if pending is not None:
            ids.add(pending)
        return sorted(ids, key=deployment_number)

    def recorded_of(self, key: str, replay_id: str) -> str | None:
        """The recorded deployment a replayed one stands for; None for one the recording does not have."""
        index = self.replayed(key, replay_id).index(replay_id)
        ids = self._recorded.get(key, ())
        return ids[index] if index < len(ids) else None

    def replay_of(self, recorded_id: str) -> str | None:
        """The replayed deployment standing for a recorded one, once the replay has created it."""
        key = self._key_of.get(recorded_id)
        if key is None:
            return None
        replayed = self.replayed(key)
        index = self._recorded[key].index(recorded_id)
        return replayed[index] if index < len(replayed) else None

    def instance_of(self, key: str, replay_deployment: str, instance_id: str) -> str | None:
        """The recorded id of a replayed instance (`<deployment_id>.<agent_id>.<attempt>`)."""
        recorded = self.recorded_of(key, replay_deployment)
        return None if recorded is None else recorded + instance_id.removeprefix(replay_deployment)

    def translator(self) -> Translator:
        """Replay ids to recorded ones, for everything the replay has created by now."""
        pairs = {}
        for key in {r.deployment_key for r in self._store.list_deployments()}:
            for replay_id in self.replayed(key):
                recorded = self.recorded_of(key, replay_id)
                if recorded is not None:
                    pairs[replay_id] = (key, recorded)
        return Translator(pairs)


class Translator:
    """Rewrites the ids inside a replayed event into the recorded ones, so the two compare as equals."""

    def __init__(self, pairs: Mapping[str, tuple[str, str]]) -> None:
        """`pairs`: replayed deployment id -> (its key, the recorded id it stands for)."""
        self._deployments = {replay: recorded for replay, (_, recorded) in pairs.items()}
        self._jobs = {  # a job is named after the deployment that created it
            job_id_for(key, deployment_number(replay)): job_id_for(key, deployment_number(recorded))
            for replay, (key, recorded) in pairs.items()
        }
        self._prefixes = sorted(
            ((replay + ".", recorded + ".") for replay, recorded in self._deployments.items()), key=lambda p: -len(p[0])
        )

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._text(value)
        if isinstance(value, list):
            return [self(item) for item in value]
        if isinstance(value, dict):
            return {name: self(item) for name, item in value.items()}
        return value

    def _text(self, value: str) -> str:
        found = self._deployments.get(value) or self._jobs.get(value)
        if found is not None:
            return found
        for replay, recorded in self._prefixes:
            if value.startswith(replay):
                return recorded + value.removeprefix(replay)
        return value
