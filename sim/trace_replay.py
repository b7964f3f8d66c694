"""Replay: re-run a recorded rollout (a trace, live or simulated) in the simulator and compare its decisions.

The replay runs the real `Controller` on SimPy time, as a scenario run does, with the recorded operator calls at
their recorded times. Its world draws nothing: when the controller places an instance, the world finds the
recorded instance it stands for (`sim.pairing`) and reports that instance's recorded facts at the same offsets
after its placement as they came after the recorded one, until the controller stops it. Same inputs, same core:
the decisions should come out the same, at the same times (`sim.parity`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import simpy

from backends.memory import MemoryRegistry, MemoryStore
from mn_deploy_core.controller import Controller
from mn_deploy_core.errors import InvalidManifestError
from mn_deploy_core.manifest import load_manifest
from mn_deploy_core.records import DeploymentRecord, deployment_number
from mn_deploy_core.trace import manifest_name
from sim import lives
from sim.actions import Operator
from sim.behavior import Behavior
from sim.pairing import Pairing
from sim.parity import Divergence, Parity, compare
from sim.provenance import Provenance
from sim.recorded import RecordedInstance, Recording, decision, read_recording
from sim.result import collect
from sim.streams import RandomStreams
from sim.world import Driver, SimInstance, SimRuntime

_AFTER_CUT_MS = 1.0
"""How long the replay of a cut trace runs past its last time, so that what is due at that very time happens."""
_AFTER_END_MS = 86_400_000.0
"""How long the replay of a finished trace may run past its last time (it finishes first unless it diverged:
every recorded life ends, and so does every timer)."""


class ReplayRuntime(SimRuntime):
    """The simulated world with every life taken from the recording instead of drawn."""

    def __init__(self, env: simpy.Environment, recording: Recording, pairing: Pairing, provenance: Provenance) -> None:
        super().__init__(env, RandomStreams.from_seed(0), provenance.of_placement, _no_behavior)
        self._recording = recording
        self._pairing = pairing
        self.unmatched: list[tuple[float, str]] = []
        """(time, instance id) of each placement the trace has no instance for."""

    def _life(self, instance: SimInstance, epoch: int, *, crashed: bool) -> lives.Waits:
        placement = instance.placement
        instance.manifest_name = self._manifest_of(placement) or manifest_name(
            placement.deployment_key, placement.deployment_version
        )
        recorded_id = self._pairing.instance_of(
            placement.deployment_key, placement.deployment_id, placement.instance_id
        )
        recorded = None if recorded_id is None else self._recording.instances.get(recorded_id)
        if recorded is None:
            self.unmatched.append((self.env.now, placement.instance_id))
        else:
            yield from self._facts(instance, epoch, recorded)
            if instance.epoch != epoch:
                return
        self._release(instance)
        self._on_idle()

    def _facts(self, instance: SimInstance, epoch: int, recorded: RecordedInstance) -> lives.Waits:
        """Each fact at its recorded time, moved by as much as this placement is later than the recorded one
        (so a replay in step lands on the recorded times exactly)."""
        shift = instance.placed_ms - recorded.placed_ms
        for t_ms, kind, check in recorded.facts:
            due = t_ms + shift
            if due > self.env.now:
                yield due - self.env.now
                if instance.epoch != epoch:
                    return
            if not self._report(instance, epoch, kind, check):
                return


def _no_behavior(_manifest: str | None, agent_id: str) -> Behavior:
    raise AssertionError(f"a replay draws no behavior (asked for {agent_id})")


class _PairedCalls:
    """The controller's operator API, with a recorded deployment id turned into the replay's (a call naming a
    deployment the replay has not created goes through as recorded, and is refused)."""

    def __init__(self, controller: Controller, pairing: Pairing) -> None:
        self._controller = controller
        self._pairing = pairing
        self.deploy = controller.deploy
        self.rollback = controller.rollback

    def _id(self, recorded: str) -> str:
        return self._pairing.replay_of(recorded) or recorded

    def promote(self, id_or_key: str, *, now: float) -> DeploymentRecord:
        return self._controller.promote(self._id(id_or_key), now=now)

    def pause(self, id_or_key: str, reason: str | None = None, *, now: float) -> DeploymentRecord:
        return self._controller.pause(self._id(id_or_key), reason, now=now)

    def resume(self, id_or_key: str, reason: str | None = None, *, now: float) -> DeploymentRecord:
        return self._controller.resume(self._id(id_or_key), reason, now=now)

    def fail(self, id_or_key: str, reason: str | None = None, *, now: float) -> DeploymentRecord:
        return self._controller.fail(self._id(id_or_key), reason, now=now)


def replay_trace(trace: Mapping[str, Any]) -> Parity:
    """Replay a parsed trace and compare its decisions with the recorded ones. Raises TraceError (one line,
    naming the JSONPath) for a trace that cannot be replayed."""
    recording = read_recording(trace)
    env = simpy.Environment(initial_time=0.0)
    store = MemoryStore()
    recorded_ids = {key: [d.deployment_id for d in ds] for key, ds in recording.deployments.items()}
    pairing = Pairing(recorded_ids, store)
    provenance = _provenance(recording)
    runtime = ReplayRuntime(env, recording, pairing, provenance)
    controller = Controller(store, runtime, MemoryRegistry())
    driver = Driver(env, controller, runtime)
    operator = Operator(driver, _PairedCalls(controller, pairing), recording.manifests, _ignore_deploy)
    operator.start(recording.actions, _no_crash)
    horizon = recording.end_ms + (_AFTER_CUT_MS if recording.cut else _AFTER_END_MS)
    env.run(until=env.any_of([driver.finished, env.timeout(horizon)]))
    result = collect("replay", 0, env.now, store, runtime, provenance, operator.errors)

    replayed: dict[str, list[list[tuple[float, dict[str, Any]]]]] = {}
    for record in sorted(store.list_deployments(), key=lambda r: deployment_number(r.deployment_id)):
        events = store.deployment_events(record.deployment_id)
        replayed.setdefault(record.deployment_key, []).append(
            [(e.t_ms, decision(e.to_json())) for e in events if e.t_ms <= recording.end_ms or not recording.cut]
        )
    comparison = compare(recording.deployments, replayed, pairing.translator())
    divergences = comparison.divergences + [
        Divergence(None, None, t, f"the replay placed {instance_id}, which the trace has no instance for")
        for t, instance_id in runtime.unmatched
    ]
    divergences += [
        Divergence(
            error["action"].get("deployment_id"),
            None,
            error["t_ms"],
            f"the replay refused a recorded call: {error['message']}",
            error["action"],
        )
        for error in operator.errors
    ]
    first = min(divergences, key=lambda d: d.t_ms, default=None)
    warnings = () if recording.complete else (_INCOMPLETE,)
    return Parity(first is None, comparison.compared, comparison.max_skew_ms, first, result, warnings)


_INCOMPLETE = (
    "the trace is not complete (its history starts after a key's first deployment): "
    "the replay starts from an empty key, which is not what happened"
)


def _provenance(recording: Recording) -> Provenance:
    """Instances and versions named as the trace names them (`sim.traced`): by the first manifest with their spec,
    so a revert to version 1 is drawn as version 1 in the replay's plots too. A manifest the core refuses is left
    out: the replay's deploy of it is refused as well, and nothing runs it."""
    loaded = {}
    for name, document in recording.manifests.items():
        try:
            loaded[name] = load_manifest(document, bundle=recording.bundles.get(name))
        except InvalidManifestError:
            continue
    return Provenance(loaded)


def _ignore_deploy(_action: Any, _record: DeploymentRecord) -> None:
    """A replay needs no provenance: every instance's life is recorded, not drawn from a manifest's behavior."""


def _no_crash(_agent_id: str, _key: str | None) -> int:
    """Recorded crashes come back as recorded facts (exited, restarted), never as injected faults."""
    return 0
