"""Update policy (R2): defaults, lenient normalization and validation with the reference's messages.

Normalization never fails (a bad value becomes the default); validation is strict and collects every
problem. Call overrides are validated exactly like the manifest and take precedence over it, except the
official CLI's five defaults over fields the manifest sets (R15, `call_overrides`); then the two
cross-field rules run on the merged policy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from mn_deploy_core.ports import RestartPolicy
from mn_deploy_core.strategies import STRATEGIES, planner

HEALTH_CHECKS = ("checks", "agent_states")
_COUNTS = ("max_parallel", "canary", "min_healthy_ms", "progress_deadline_ms")
_FLAGS = ("auto_promote", "auto_revert")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_PREFIX = "policies.update"
_INT = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True, slots=True)
class RolloutStep:
    """One step of a progressive deployment: `canary` canaries beside the old instances (first step only), or
    the new version grown to `percent` of the changed agents; then `pause_ms`, or a promote when None."""

    canary: int = 0
    percent: int = 0
    pause_ms: int | None = None

    def to_json(self) -> dict[str, int]:
        data = {"canary": self.canary} if self.canary else {"percent": self.percent}
        return data if self.pause_ms is None else {**data, "pause_ms": self.pause_ms}


@dataclass(frozen=True, slots=True)
class UpdatePolicy:
    """A normalized update policy; `extra` keeps unknown keys, which pass through untouched."""

    strategy: str = "rolling"
    max_parallel: int = 1
    canary: int = 0
    min_healthy_ms: int = 10_000
    healthy_deadline_ms: int = 300_000
    progress_deadline_ms: int = 600_000
    health_check: str = "checks"
    auto_promote: bool = False
    auto_revert: bool = False
    steps: tuple[RolloutStep, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        extra = data.pop("extra")
        steps = data.pop("steps")
        return {**extra, **data, **({"steps": [s.to_json() for s in self.steps]} if steps else {})}


@dataclass(frozen=True, slots=True)
class ReschedulePolicy:
    """Replacement instances the controller may place per agent during one deployment."""

    attempts: int = 1


DEFAULT = UpdatePolicy()


def display_value(value: Any) -> str:
    """`value` as shown inside a one-line message: non-printable characters (line breaks included) escaped."""
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def _count(value: Any, default: int) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value if value >= 0 else default
    if isinstance(value, str):
        text = value.strip()
        if not _INT.fullmatch(text):  # int() alone would also take "1_000" and non-ASCII digits
            return default
        try:
            parsed = int(text, 10)
        except ValueError:  # more digits than int() converts
            return default
        return parsed if parsed >= 0 else default
    return default


def _flag(value: Any, default: bool) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    return default


def _choice(value: Any, allowed: tuple[str, ...], default: str, old: str, new: str) -> str:
    if not isinstance(value, str):
        return default
    word = value.strip().lower().replace(old, new)
    return word if word in allowed else default


def normalize(raw: Mapping[str, Any] | None) -> UpdatePolicy:
    """The lenient reading of `policies.update`: never fails, bad values fall back to defaults."""
    raw = raw if isinstance(raw, Mapping) else {}
    known = {f for f in UpdatePolicy.__dataclass_fields__ if f != "extra"}
    return UpdatePolicy(
        strategy=_choice(raw.get("strategy"), STRATEGIES, DEFAULT.strategy, "_", "-"),
        max_parallel=_count(raw.get("max_parallel"), DEFAULT.max_parallel),
        canary=_count(raw.get("canary"), DEFAULT.canary),
        min_healthy_ms=_count(raw.get("min_healthy_ms"), DEFAULT.min_healthy_ms),
        healthy_deadline_ms=_count(raw.get("healthy_deadline_ms"), DEFAULT.healthy_deadline_ms),
        progress_deadline_ms=_count(raw.get("progress_deadline_ms"), DEFAULT.progress_deadline_ms),
        health_check=_choice(raw.get("health_check"), HEALTH_CHECKS, DEFAULT.health_check, "-", "_"),
        auto_promote=_flag(raw.get("auto_promote"), DEFAULT.auto_promote),
        auto_revert=_flag(raw.get("auto_revert"), DEFAULT.auto_revert),
        steps=_steps(raw.get("steps")),
        extra={k: v for k, v in raw.items() if k not in known},
    )


def _steps(value: Any) -> tuple[RolloutStep, ...]:
    """Steps as given, when they are all well formed; none otherwise (validation says what is wrong)."""
    if not isinstance(value, list) or _steps_problems(value):
        return ()
    return tuple(RolloutStep(s.get("canary", 0), s.get("percent", 0), s.get("pause_ms")) for s in value)


def _steps_problems(value: Any) -> list[str]:
    """`policies.update.steps`: a list of objects, each with `canary` (first step only, at least 1) or `percent`
    (1 to 100, above the step before), and optionally `pause_ms`."""
    if not isinstance(value, list):
        return [f"{_PREFIX}.steps must be a list"]
    problems: list[str] = []
    reached = 0
    for index, step in enumerate(value):
        where = f"{_PREFIX}.steps[{index}]"
        if not isinstance(step, Mapping) or ("canary" in step) == ("percent" in step):
            problems.append(f"{where} must be an object with either canary or percent")
            continue
        unknown = sorted(str(k) for k in step if k not in ("canary", "percent", "pause_ms"))
        if unknown:
            problems.append(f"{where} has unknown key {display_value(unknown[0])}")
        if "canary" in step:
            if index:
                problems.append(f"{where}.canary is only allowed in the first step")
            elif not (_is_count(step["canary"]) and step["canary"] > 0):
                problems.append(f"{where}.canary must be a positive integer")
        elif not (_is_count(step["percent"]) and reached < step["percent"] <= 100):
            problems.append(f"{where}.percent must be an integer above {reached} and at most 100")
        else:
            reached = step["percent"]
        if "pause_ms" in step and not _is_count(step["pause_ms"]):
            problems.append(f"{where}.pause_ms must be a non-negative integer")
    return problems


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def validate_update(raw: Any) -> list[str]:
    """Problems with one `policies.update` mapping (manifest or override), in field order."""
    if not isinstance(raw, Mapping):
        return [f"{_PREFIX} must be an object"]
    problems: list[str] = []
    for key, allowed in (("strategy", STRATEGIES), ("health_check", HEALTH_CHECKS)):
        if key in raw:
            value = raw[key]
            word = value.strip().lower() if isinstance(value, str) else value
            if word not in allowed:
                problems.append(f'{_PREFIX}.{key} has unsupported value "{display_value(value)}"')
    for key in _COUNTS:
        if key in raw and not _is_count(raw[key]):
            problems.append(f"{_PREFIX}.{key} must be a non-negative integer")
    deadline: Any = raw.get("healthy_deadline_ms")
    if "healthy_deadline_ms" in raw and not (_is_count(deadline) and deadline > 0):
        problems.append(f"{_PREFIX}.healthy_deadline_ms must be a positive integer")
    for key in _FLAGS:
        if key in raw and not isinstance(raw[key], bool):
            problems.append(f"{_PREFIX}.{key} must be a boolean")
    if "steps" in raw:
        problems.extend(_steps_problems(raw["steps"]))
    return problems


def validate_combined(policy: UpdatePolicy) -> list[str]:
    """Rules across fields, checked on the merged policy so overrides cannot skip them."""
    problems = planner(policy.strategy).problems(policy)
    if policy.min_healthy_ms >= policy.healthy_deadline_ms:
        problems.append(f"{_PREFIX}.min_healthy_ms must be less than healthy_deadline_ms")
    if policy.progress_deadline_ms and policy.healthy_deadline_ms >= policy.progress_deadline_ms:
        problems.append(f"{_PREFIX}.healthy_deadline_ms must be less than progress_deadline_ms")
    return problems


CLI_DEFAULTS: Mapping[str, Any] = {
    "strategy": "rolling",
    "max_parallel": 1,
    "canary": 0,
    "auto_promote": False,
    "auto_revert": False,
}
"""What the official `mn deployment deploy` sends with every call, its flags given or not (R15)."""


def _cli_defaults(overrides: Mapping[str, Any]) -> bool:
    """Whether `overrides` are exactly `CLI_DEFAULTS`: the same five fields, valid, and equal once normalized
    (`"Rolling"` is `rolling`), each of its own type (a count is no bool, a flag no integer)."""
    if set(overrides) != set(CLI_DEFAULTS) or validate_update(overrides):
        return False
    policy = normalize(overrides)
    return all(
        type(getattr(policy, name)) is type(value) and getattr(policy, name) == value
        for name, value in CLI_DEFAULTS.items()
    )


def call_overrides(raw: Any, overrides: Mapping[str, Any] | None) -> tuple[Mapping[str, Any] | None, tuple[str, ...]]:
    """R15: the call's overrides as they apply over the manifest's raw `policies.update`, and the fields kept
    from the manifest instead (sorted).

    Overrides take precedence, except when they are exactly `CLI_DEFAULTS`, which do not say what the user
    wants: then every field the manifest's `policies.update` sets itself keeps the manifest's value. Any other
    overrides, even differing from `CLI_DEFAULTS` in one field, apply in full.
    """
    if not isinstance(raw, Mapping) or not isinstance(overrides, Mapping) or not _cli_defaults(overrides):
        return overrides, ()
    kept = tuple(sorted(name for name in CLI_DEFAULTS if name in raw))
    return {k: v for k, v in overrides.items() if k not in kept}, kept


def merged(raw: Mapping[str, Any] | None, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """The manifest's raw policy with overrides shallow-merged over it."""
    base = dict(raw) if isinstance(raw, Mapping) else {}
    return {**base, **(overrides if isinstance(overrides, Mapping) else {})}


def _attempt_policy(raw: Any, name: str, defaults: Mapping[str, int], problems: list[str]) -> dict[str, int]:
    if raw is None:
        return dict(defaults)
    if not isinstance(raw, Mapping):
        problems.append(f"policies.{name} must be an object")
        return dict(defaults)
    values = dict(defaults)
    for key in defaults:
        if key in raw:
            if _is_count(raw[key]):
                values[key] = raw[key]
            else:
                problems.append(f"policies.{name}.{key} must be a non-negative integer")
    return values


def restart_policy(policies: Mapping[str, Any], problems: list[str]) -> RestartPolicy:
    """`policies.restart`: in-place restarts done by the runtime; problems are appended to `problems`."""
    defaults = {"attempts": RestartPolicy().attempts, "delay_ms": RestartPolicy().delay_ms}
    return RestartPolicy(**_attempt_policy(policies.get("restart"), "restart", defaults, problems))


def reschedule_policy(policies: Mapping[str, Any], problems: list[str]) -> ReschedulePolicy:
    """`policies.reschedule`: replacements the controller may place during a deployment."""
    defaults = {"attempts": ReschedulePolicy().attempts}
    return ReschedulePolicy(**_attempt_policy(policies.get("reschedule"), "reschedule", defaults, problems))


_UPDATE_KEYS = frozenset(name for name in UpdatePolicy.__dataclass_fields__ if name != "extra")
_SECTIONS: Mapping[str, frozenset[str] | None] = {
    "update": _UPDATE_KEYS,
    "restart": frozenset({"attempts", "delay_ms"}),
    "reschedule": frozenset({"attempts"}),
    "deployment_key": None,
}


def unknown_keys(policies: Any) -> list[tuple[str, ...]]:
    """Policy keys the manifest format does not know, as paths below `policies`: (section,) or (section, key).

    They are not errors (MirrorNeuron passes unknown policy keys through), but a misspelt
    `max_paralel` silently changes nothing, so tools warn about them.
    """
    if not isinstance(policies, Mapping):
        return []
    unknown: list[tuple[str, ...]] = []
    for section, value in policies.items():
        if section not in _SECTIONS:
            unknown.append((str(section),))
            continue
        known = _SECTIONS[section]
        if known is not None and isinstance(value, Mapping):
            unknown.extend((section, str(key)) for key in value if key not in known)
    return unknown
