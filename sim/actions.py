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
from sim.schema import ScenarioError, child, closed_object, number, object_of, text
from sim.world import Driver

_OPTIONS: dict[str, tuple[str, ...]] = {
    "deploy": ("overrides", "key"),
    "promote": (),
    "rollback": ("version", "tag", "reason"),
    "pause": ("reason",),
    "resume": ("reason",),
    "fail": ("reason",),
    "crash": (),
}
VERBS = tuple(_OPTIONS)
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


def parse_action(value: Any, path: str, manifest_names: Collection[str], agent_ids: Collection[str]) -> Action:
    """One entry of `actions`: `at_ms`, exactly one verb, and that verb's options."""
    body = object_of(value, path)
    verbs = [v for v in VERBS if v in body]
    if len(verbs) != 1:
        raise ScenarioError(path, f"must have exactly one of: {', '.join(VERBS)}")
    (verb,) = verbs
    closed_object(body, path, ("at_ms", verb, *_OPTIONS[verb]), ("at_ms",))
    at_ms = number(body["at_ms"], child(path, "at_ms"))
    verb_path = child(path, verb)
    options = {name: body[name] for name in _OPTIONS[verb] if name in body}
    for name, option in options.items():
        if name == "overrides":
            object_of(option, child(path, name))
        else:
            text(option, child(path, name))
    if verb == "crash":
        crash = closed_object(body[verb], verb_path, ("agent", "key"), ("agent",))
        target = text(crash["agent"], child(verb_path, "agent"))
        if target not in agent_ids:
            raise ScenarioError(child(verb_path, "agent"), f'unknown agent "{target}"')
        if "key" in crash:
            options["key"] = text(crash["key"], child(verb_path, "key"))
    else:
        target = text(body[verb], verb_path)
    if verb == "deploy" and target not in manifest_names:
        raise ScenarioError(verb_path, f'unknown manifest "{target}"')
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
            bundle = options.get("bundle")  # only a replayed deploy has one: scenarios ship no payloads
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
