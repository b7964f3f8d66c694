"""What the operator (or a fault) does when: the scenario's `actions`, parsed and then performed.

An action the controller refuses is not a scenario error: it is recorded with its message and the run
goes on, because "what if someone promotes too early" is a fair question to ask a simulation.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import simpy

from mn_deploy_core.errors import DeploymentError
from mn_deploy_core.records import DeploymentRecord
from sim.schema import Problems, ScenarioError, child, closed_object, known_keys, number, object_of, text
from sim.world import Driver

OPTIONS: Mapping[str, tuple[str, ...]] = {
    "deploy": ("overrides", "key", "bundle"),
    "promote": (),
    "rollback": ("version", "tag", "reason"),
    "pause": ("reason",),
    "resume": ("reason",),
    "fail": ("reason",),
    "crash": (),
}
"""Each verb's options besides `at_ms`: `overrides` is an object, the others are texts."""
VERBS = tuple(OPTIONS)
Steps = Generator[simpy.Event, Any, None]
"""The operator's SimPy process."""


@dataclass(frozen=True, slots=True)
class Action:
    """One scheduled action; `target` is a manifest name (deploy), an agent id (crash) or an id or key."""

    at_ms: float
    verb: str
    target: str
    options: Mapping[str, Any] = field(default_factory=dict)
    source: Mapping[str, Any] = field(default_factory=dict)


class Operated(Protocol):
    """The controller's operator API, as the simulator calls it."""

    def deploy(
        self,
        manifest: Mapping[str, Any],
        overrides: Mapping[str, Any] | None = None,
        key: str | None = None,
        bundle: str | None = None,
        *,
        now: float,
    ) -> DeploymentRecord: ...

    def promote(self, id_or_key: str, *, now: float) -> DeploymentRecord: ...

    def rollback(
        self,
        id_or_key: str,
        version: str | None = None,
        reason: str | None = None,
        tag: str | None = None,
        *,
        now: float,
    ) -> DeploymentRecord: ...

    def pause(self, id_or_key: str, reason: str | None = None, *, now: float) -> DeploymentRecord: ...

    def resume(self, id_or_key: str, reason: str | None = None, *, now: float) -> DeploymentRecord: ...

    def fail(self, id_or_key: str, reason: str | None = None, *, now: float) -> DeploymentRecord: ...


def _crash(value: Any, path: str, agent_ids: Collection[str] | None) -> tuple[str, dict[str, str]]:
    """A crash's agent (checked against `agent_ids` unless None) and its options."""
    crash = closed_object(value, path, ("agent", "key"), ("agent",))
    problems = Problems()
    target = problems.field(crash, path, "agent", text, "")
    key = problems.field(crash, path, "key", text, "")
    if target and agent_ids is not None and target not in agent_ids:
        problems.add(child(path, "agent"), f'unknown agent "{target}"')
    problems.raise_any()
    return target, {"key": key} if key else {}


def parse_action(
    value: Any, path: str, manifest_names: Collection[str] | None, agent_ids: Collection[str] | None
) -> Action:
    """One entry of `actions`: `at_ms`, exactly one verb, and that verb's options, every problem at once. The
    manifest a deploy names and the agent a crash names are checked unless `manifest_names` or `agent_ids` is None
    (the scenario's manifests are broken, and report their own problems)."""
    body = object_of(value, path)
    verbs = [v for v in VERBS if v in body]
    if len(verbs) != 1:
        raise ScenarioError(path, f"must have exactly one of: {', '.join(VERBS)}")
    (verb,) = verbs
    problems = Problems()
    problems.check(known_keys, body, path, ("at_ms", verb, *OPTIONS[verb]), ("at_ms",))
    at_ms = problems.field(body, path, "at_ms", number, 0.0)
    options = {name: body[name] for name in OPTIONS[verb] if name in body}
    for name in options:
        problems.field(body, path, name, object_of if name == "overrides" else text, None)
    verb_path = child(path, verb)
    if verb == "crash":
        target, crash_options = problems.check(_crash, body[verb], verb_path, agent_ids) or ("", {})
        options.update(crash_options)
    else:
        target = problems.field(body, path, verb, text, "")
    if verb == "deploy" and target and manifest_names is not None and target not in manifest_names:
        problems.add(verb_path, f'unknown manifest "{target}"')
    problems.raise_any()
    return Action(at_ms=at_ms, verb=verb, target=target, options=options, source=body)


def perform(
    action: Action,
    controller: Operated,
    manifests: Mapping[str, Mapping[str, Any]],
    crash: Callable[[str, str | None], int],
    now: float,
) -> DeploymentRecord | None:
    """Carry out `action` at `now`; the controller's record is returned for a deploy. Raises DeploymentError."""
    options = action.options
    target, reason = action.target, options.get("reason")
    match action.verb:
        case "deploy":
            bundle = options.get("bundle")  # the payloads' fingerprint, part of every spec digest
            return controller.deploy(manifests[target], options.get("overrides"), options.get("key"), bundle, now=now)
        case "promote":
            controller.promote(target, now=now)
        case "rollback":
            controller.rollback(target, options.get("version"), reason, tag=options.get("tag"), now=now)
        case "pause":
            controller.pause(target, reason, now=now)
        case "resume":
            controller.resume(target, reason, now=now)
        case "fail":
            controller.fail(target, reason, now=now)
        case "crash":
            crash(action.target, options.get("key"))
    return None


class Operator:
    """A SimPy process performing the actions at their times; the run stays open until the last one."""

    def __init__(
        self,
        driver: Driver,
        controller: Operated,
        manifests: Mapping[str, Mapping[str, Any]],
        on_deploy: Callable[[Action, DeploymentRecord], None],
    ) -> None:
        self._driver = driver
        self._controller = controller
        self._manifests = manifests
        self._on_deploy = on_deploy
        self.errors: list[dict[str, Any]] = []

    def start(self, actions: Sequence[Action], crash: Callable[[str, str | None], int]) -> None:
        self._driver.hold()
        self._driver.env.process(self._run(actions, crash))

    def _run(self, actions: Sequence[Action], crash: Callable[[str, str | None], int]) -> Steps:
        env = self._driver.env
        for action in actions:
            if action.at_ms > env.now:
                yield env.timeout(action.at_ms - env.now)
            try:
                record = perform(action, self._controller, self._manifests, crash, env.now)
            except DeploymentError as error:
                self.errors.append({"t_ms": env.now, "action": dict(action.source), "message": error.message})
            else:
                if record is not None:
                    self._on_deploy(action, record)
            self._driver.after_call()
        self._driver.release()
