"""What the controller records for a trace (docs/traces.md), and the trace it assembles: every fact it takes in,
before the decision it leads to; every operator call it accepts, in a scenario's words; nothing it refuses."""

from __future__ import annotations

from typing import Any

import pytest

from backends.memory import MemoryRecorder
from mn_deploy_core.errors import DeploymentError
from mn_deploy_core.ports import FactKind
from mn_deploy_core.trace import FORMAT, TraceError, check_trace
from tests.scripted import World, service_manifest

KEY = "agent-api"


def recording_world() -> World:
    """Version 1 stable, with a recorder from the first call."""
    return World.settled(service_manifest(), recorder=MemoryRecorder())


def entries(world: World) -> list[tuple[str, float, dict[str, Any]]]:
    assert world.recorder is not None
    return [(i.deployment_id, i.t_ms, dict(i.entry)) for i in world.recorder.inputs]


def test_every_fact_of_a_known_instance_is_recorded_under_its_deployment_at_its_time() -> None:
    world = recording_world()
    facts = [e for e in entries(world) if "fact" in e[2]]
    # three agents, each: running, ready, one check passing (the scripted world reports no `placed`)
    assert [e[2]["fact"] for e in facts] == ["running", "ready", "check_passing"] * 3
    assert {e[0] for e in facts} == {"dep_agent-api_1"}
    assert facts[2][2] == {"fact": "check_passing", "instance_id": "dep_agent-api_1.worker-0.0", "check": "api:0"}


def test_a_fact_about_an_unknown_instance_is_not_recorded() -> None:
    world = recording_world()
    before = len(entries(world))
    world.report("dep_agent-api_9.worker-0.0", FactKind.RUNNING)
    assert len(entries(world)) == before


def test_a_deploy_is_recorded_as_the_version_it_resolved_to_with_its_overrides() -> None:
    world = recording_world()
    world.clock.now = 5000.0
    record = world.deploy(service_manifest("agent:2"), overrides={"max_parallel": 2})
    assert entries(world)[-1] == (
        record.deployment_id,
        5000.0,
        {"action": "deploy", "target": f"{KEY}@2", "overrides": {"max_parallel": 2}},
    )


def test_operator_calls_name_the_deployment_they_applied_to_and_a_rollback_its_key() -> None:
    world = recording_world()
    rolling = world.deploy(service_manifest("agent:2"))
    world.controller.pause(KEY, reason="look", now=1.0)
    world.controller.resume(rolling.deployment_id, now=2.0)
    back = world.controller.rollback(KEY, reason="slow", now=3.0)
    assert [e[2] for e in entries(world)[-3:]] == [
        {"action": "pause", "target": rolling.deployment_id, "reason": "look"},
        {"action": "resume", "target": rolling.deployment_id},
        {"action": "rollback", "target": KEY, "version": "1", "reason": "slow"},
    ]
    assert entries(world)[-1][0] == back.deployment_id


def test_a_refused_call_is_not_recorded() -> None:
    world = recording_world()
    before = len(entries(world))
    with pytest.raises(DeploymentError):
        world.controller.promote(KEY, now=1.0)  # the key's deployment is over: refused
    assert len(entries(world)) == before


def test_the_fact_is_recorded_before_the_decision_it_leads_to() -> None:
    """A failed start is judged unhealthy at once; the recorder sees the fact while the store does not yet hold
    the verdict's event."""
    seen: list[list[str]] = []
    world = recording_world()
    world.deploy(service_manifest("agent:2"))
    first = world.fresh()[0]
    assert world.recorder is not None

    def look(deployment_id: str, now: float, entry: Any) -> None:
        seen.append([e.type for e in world.store.deployment_events(deployment_id)])

    world.recorder.record = look  # type: ignore[method-assign]
    world.report(first, FactKind.FAILED)
    assert seen and "deployment_instance_unhealthy" not in seen[-1]
    assert "deployment_instance_unhealthy" in world.event_types(KEY)


def test_the_assembled_trace_is_relative_to_its_origin_and_reads_back() -> None:
    world = recording_world()
    world.clock.now = 10_000.0
    world.deploy(service_manifest("agent:2"))
    world.converge()
    assert world.recorder is not None
    trace = world.recorder.trace(world.store)
    assert check_trace(trace) is trace
    assert (trace["format"], trace["source"], trace["complete"]) == (FORMAT, "sim", True)
    assert [a["deploy"] for a in trace["actions"]] == [f"{KEY}@1", f"{KEY}@2"]
    assert [a["at_ms"] for a in trace["actions"]] == [0.0, 10_000.0]
    assert sorted(trace["manifests"]) == [f"{KEY}@1", f"{KEY}@2"]
    v2 = [i for i in trace["instances"] if i["version"] == "2"]
    assert len(v2) == 3 and all(i["life"]["stopped_ms"] is None for i in v2)
    assert all(i["facts"][0]["t_ms"] >= i["placed_ms"] for i in v2)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda t: t.update(format=2), "$.format: trace format 2 is not supported (this reads 1)"),
        (lambda t: t.pop("instances"), "$: missing instances"),
        (lambda t: t.update(source="mars"), "$.source: must be one of live, sim"),
        (lambda t: t["actions"][0].update(at_ms=float("nan")), "$.actions[0].at_ms: must be a finite number of"),
        (lambda t: t["actions"][0].update(promote="x"), "$.actions[0]: must have exactly one of deploy"),
        (lambda t: t["instances"][0]["facts"][0].update(kind="dreamt"), "$.instances[0].facts[0].kind: must be one"),
    ],
)
def test_a_trace_that_cannot_be_read_is_refused_in_one_line_naming_where(change: Any, problem: str) -> None:
    world = recording_world()
    assert world.recorder is not None
    trace = world.recorder.trace(world.store)
    change(trace)
    with pytest.raises(TraceError) as refused:
        check_trace(trace)
    assert refused.value.message.startswith(problem)
    assert "\n" not in refused.value.message
