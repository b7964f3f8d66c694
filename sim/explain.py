"""The story of a run: one line per decision of the controller, with the rule of docs/rules.md behind it.

A result's events say what happened; a reader checking a rollout wants to know why, and which rule to read.
`explain(result)` walks the events in time order, merges runs of the same decision on several agents (ten
healthy verdicts in a row are one line), names the rule (`R8`, `R10`, ...) and says in words what it decided,
from the event and its deployment's record alone, so a result saved as JSON or read from a trace explains too.
`sim run --explain` prints it; notebook 1 shows it as a table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from mn_deploy_core.status import FAILED_DEADLINE, FAILED_UNHEALTHY, FAILED_VERSION_MISSING
from sim.result import Result

__all__ = ["StoryLine", "explain"]

_PREFIX = "deployment_"
_LISTED_AGENTS = 4
_REFUSED_RULES = {"deploy": "R1/R2/R15", "crash": ""}  # every other verb is an operator action (R11)


@dataclass(frozen=True)
class StoryLine:
    """One decision: when (`from_ms` to `to_ms` when merged), of which deployment ("" for a refused action),
    what happened, to which agents, the rule (`R6`, or "" for what no rule decides) and why, in words."""

    from_ms: float
    to_ms: float
    deployment_id: str
    what: str
    agents: tuple[str, ...]
    rule: str
    why: str

    def agents_text(self) -> str:
        """The agents, or how many when a list would not fit a line."""
        return ", ".join(self.agents) if len(self.agents) <= _LISTED_AGENTS else f"{len(self.agents)} agents"

    def to_json(self) -> dict[str, Any]:
        return {
            "from_ms": self.from_ms,
            "to_ms": self.to_ms,
            "deployment_id": self.deployment_id,
            "what": self.what,
            "agents": list(self.agents),
            "rule": self.rule,
            "why": self.why,
        }


@dataclass
class _Context:
    """What the explanation of one event needs to know beyond the event: its deployment's record, how its
    version was created, how its last trial was to be promoted, and which instances replace lost ones."""

    deployment: Mapping[str, Any]
    created_by: str
    promotion: str
    reconciled: set[str]


def _placed(event: Mapping[str, Any], context: _Context) -> tuple[str, str]:
    deployment = context.deployment
    attempt = event["instance_id"].rsplit(".", 1)[-1]
    if event["instance_id"] in context.reconciled:
        return "R16", "a lost primary of the current job replaced, within the reschedule budget"
    if attempt != "0":
        return "R9", f"replacement number {attempt} for an unhealthy instance, placed at once"
    if event["role"] == "canary":
        return "R6", "a canary beside the old instance, hidden from discovery"
    if event["role"] == "candidate":
        return "R7", "a blue-green candidate: the new job beside the old one"
    if deployment["mode"] == "initial":
        return "R3", "a new key: every agent placed at once as primary"
    if context.created_by == "auto_revert":
        return "R10", "the revert rolls, with the failed deployment's max_parallel"
    max_parallel = deployment["policy"]["max_parallel"]
    budget = "no limit" if max_parallel == 0 else f"at most max_parallel={max_parallel} in flight"
    return "R5", f"rolling, destructively: {budget}"


def _started(event: Mapping[str, Any], context: _Context) -> tuple[str, str]:
    deployment = context.deployment
    changed = f"{len(deployment['changed_agent_ids'])} changed agents"
    rollback = deployment.get("rollback") or {}
    if context.created_by == "auto_revert":
        return "R10", f"auto-revert: a copy of stable version {rollback.get('to_version')}, {changed}"
    if context.created_by == "rollback":
        return "R11", f"rollback to version {rollback.get('to_version')}, {changed}"
    if deployment["mode"] == "blue_green":
        return "R7", "the topology changed: a whole new job, blue-green"
    return "R3", f"an agent-level update ({deployment['policy']['strategy']}): {changed}"


def _ready(event: Mapping[str, Any], context: _Context) -> tuple[str, str]:
    if event["type"] == "deployment_step_ready":
        return "progressive", f"step {event['step']} healthy, " + _next(context.promotion)
    if context.deployment["mode"] == "blue_green":
        return "R7", "every candidate healthy, " + _next(context.promotion)
    return _trial_rule(context), "every canary healthy, " + _next(context.promotion)


def _trial_rule(context: _Context) -> str:
    """Canaries follow R6, or the progressive strategy (our extension, no R-number) when their step is its first."""
    return "progressive" if context.deployment["policy"]["strategy"] == "progressive" else "R6"


def _next(promotion: str) -> str:
    return {
        "manual": "awaiting the operator's promote (the progress deadline waits too)",
        "automatic": "promoted at once (auto_promote)",
        "after_pause": "soaking for the step's pause_ms before going on",
    }.get(promotion, f"promotion {promotion}")


def _promoted(event: Mapping[str, Any], context: _Context) -> tuple[str, str]:
    who = {"manual": "the operator promoted", "after_pause": "the soak ended"}.get(
        context.promotion, "promoted automatically"
    )
    if context.deployment["mode"] == "blue_green":
        return "R7", f"{who}: the new job serves, the old one stops"
    rule = _trial_rule(context) + ("/R11" if context.promotion == "manual" else "")
    return rule, f"{who}: canaries become primaries, their old instances stop, the rest rolls"


def _failed(event: Mapping[str, Any], context: _Context) -> tuple[str, str]:
    reason = event.get("reason", "")
    if reason in (FAILED_UNHEALTHY, FAILED_DEADLINE):
        return "R9", reason
    if reason == FAILED_VERSION_MISSING:
        return "takeover", reason
    return "R11", f"the operator failed it: {reason}"


def _fixed(rule: str, why: str) -> Any:
    return lambda event, context: (rule, why)


_EXPLAIN = {
    "created": _fixed("R3", "a new key: every agent placed at once as primary"),
    "started": _started,
    "instance_placed": _placed,
    "instance_healthy": lambda event, context: (
        "R8",
        f"ready with its checks passing for min_healthy_ms={context.deployment['policy']['min_healthy_ms']:g} ms",
    ),
    "instance_unhealthy": _fixed("R8", "failed for good, or not healthy by the healthy deadline"),
    "instance_lost": _fixed("R16", "a primary lost for good outside a rollout"),
    "canary_ready": _ready,
    "step_ready": _ready,
    "promoted": _promoted,
    "successful": lambda event, context: ("R5", f"every changed agent healthy: version {event['version']} stable"),
    "failed": _failed,
    "reverted": lambda event, context: (
        "R10",
        f"auto_revert to version {event['to_version']}, the highest stable other version",
    ),
    "cancelled": _fixed("R4", "a newer deployment of the key"),
    "paused": lambda event, context: ("R11", f"the operator paused it: {event.get('reason', '')}"),
    "running": lambda event, context: ("R11", f"the operator resumed it: {event.get('reason', '')}"),
    "noop": _fixed("R3", "the same specification: nothing to change"),
    "version_recorded": _fixed("R3b", "a batch version recorded as a rerun"),
    "policy_overrides_ignored": lambda event, context: (
        "R15",
        f"call overrides the manifest does not allow, ignored: {', '.join(event.get('fields', []))}",
    ),
}


def _lines(result: Result) -> Iterable[StoryLine]:
    deployments = {d["deployment_id"]: d for d in result.deployments}
    created_by = {(key, v["version"]): v["created_by"] for key, versions in result.versions.items() for v in versions}
    promotion: dict[str, str] = {}
    reconciled: set[str] = set()
    for event in result.events:
        kind = event["type"].removeprefix(_PREFIX)
        deployment = deployments[event["deployment_id"]]
        if kind in ("canary_ready", "step_ready"):
            promotion[event["deployment_id"]] = event.get("promotion", "manual")
        if kind == "instance_lost" and "replacement_id" in event:
            reconciled.add(event["replacement_id"])
        context = _Context(
            deployment,
            created_by.get((deployment["deployment_key"], deployment["target_version"]), "deploy"),
            promotion.get(event["deployment_id"], "manual"),
            reconciled,
        )
        rule, why = _EXPLAIN[kind](event, context) if kind in _EXPLAIN else ("", "")
        agents = (event["agent_id"],) if "agent_id" in event else ()
        yield StoryLine(event["t_ms"], event["t_ms"], event["deployment_id"], kind, agents, rule, why)
    for error in result.errors:
        verb = next(k for k in error["action"] if k != "at_ms")
        rule = _REFUSED_RULES.get(verb, "R11")
        yield StoryLine(error["t_ms"], error["t_ms"], "", f"{verb} refused", (), rule, error["message"])


def explain(result: Result) -> list[StoryLine]:
    """The run's decisions in time order, each with its rule; consecutive lines that differ only in their agent
    (and time) are merged into one spanning their times."""
    story: list[StoryLine] = []
    for line in sorted(_lines(result), key=lambda line: line.from_ms):
        last = story[-1] if story else None
        same = last is not None and (last.deployment_id, last.what, last.rule, last.why) == (
            line.deployment_id,
            line.what,
            line.rule,
            line.why,
        )
        if last is not None and same and line.agents and last.agents:
            story[-1] = replace(last, to_ms=line.to_ms, agents=last.agents + line.agents)
        else:
            story.append(line)
    return story
