"""Every example scenario runs against the real controller and ends as its description says.

A failing assertion prints the seed and the one command that replays the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from sim import Result, read_scenario, run_scenario
from tests.sim.conftest import EXAMPLES, replay
from tests.sim.story import assert_one_story

KEY = "agent-api"
DONE = "Deployment completed successfully"


@dataclass(frozen=True)
class Outcome:
    deployments: list[tuple[str, str]]
    current_version: str
    final_manifests: set[str]
    refused: int = 0
    key: str = KEY


EXPECTED = {
    "rolling-success": Outcome([("successful", DONE)] * 2, "2", {"v2"}),
    "rolling-bad-version-auto-revert": Outcome(
        [
            ("successful", DONE),
            ("failed", "Failed due to unhealthy instances - rolling back to version 1"),
            ("successful", DONE),
        ],
        "3",
        {"v1"},
    ),
    "canary-manual-promote": Outcome([("successful", DONE)] * 2, "2", {"v2"}, refused=1),
    "canary-auto-promote": Outcome([("successful", DONE)] * 2, "2", {"v2"}),
    "blue-green-topology-change": Outcome([("successful", DONE)] * 2, "2", {"v2"}),
    "progress-deadline": Outcome(
        [("successful", DONE), ("failed", "Failed due to progress deadline")], "1", {"v1", "v2"}
    ),
    "pause-resume": Outcome([("successful", DONE)] * 2, "2", {"v2"}),
    "manual-rollback": Outcome([("successful", DONE)] * 3, "3", {"v1"}, refused=1),
    "progressive-steps": Outcome([("successful", DONE)] * 2, "2", {"v2"}),
    "hello-bundle-broken-health": Outcome(
        [
            ("successful", DONE),
            ("failed", "Failed due to unhealthy instances - rolling back to version 1"),
            ("successful", DONE),
        ],
        "3",
        {"v1"},
        key="hello",
    ),
}


def path_of(name: str) -> Path:
    return EXAMPLES / f"{name}.json"


@cache
def run(name: str, seed: int | None = None) -> Result:
    return run_scenario(read_scenario(path_of(name)), seed=seed)


def types(result: Result, deployment: int) -> list[str]:
    return [e["type"] for e in result.deployments[deployment]["events"]]


def test_every_example_has_an_expected_outcome() -> None:
    assert {p.stem for p in EXAMPLES.glob("*.json")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_ends_as_described(name: str) -> None:
    result, expected = run(name), EXPECTED[name]
    why = replay(path_of(name), result.seed)
    assert [(d["status"], d["description"]) for d in result.deployments] == expected.deployments, why
    final = result.final[expected.key]
    assert final["current_version"] == expected.current_version, why
    assert {a["manifest_name"] for a in final["agents"].values()} == expected.final_manifests, why
    assert len(result.errors) == expected.refused, why
    assert result.metrics["per_deployment"][-1]["outcome"] == expected.deployments[-1][0], why


def test_auto_revert_redeploys_the_stable_manifest_which_then_behaves_as_it() -> None:
    result = run("rolling-bad-version-auto-revert")
    v3 = result.versions[KEY][2]
    assert (v3["created_by"], v3["manifest_name"], v3["rollback"]["to_version"]) == ("auto_revert", "v1", "1")
    assert "deployment_reverted" in types(result, 1)
    reverted = [i for i in result.instances if i["version"] == "3"]
    assert reverted and all(i["outcome"] == "healthy" and i["restarts"] == 0 for i in reverted)
    assert result.metrics["unhealthy_instances"] == 3


def test_a_canary_promoted_too_early_is_refused_and_the_run_goes_on() -> None:
    result = run("canary-manual-promote")
    assert result.errors == [
        {
            "t_ms": 61000.0,
            "action": {"at_ms": 61000, "promote": KEY},
            "message": "deployment is running, expected awaiting_promotion",
        }
    ]
    assert types(result, 1).count("deployment_promoted") == 1
    canaries = [i for i in result.instances if i["role"] == "canary"]
    assert len(canaries) == 2 and all(i["healthy_ms"] < 120000.0 for i in canaries)


def test_blue_green_keeps_the_old_job_serving_until_the_candidates_take_over() -> None:
    result = run("blue-green-topology-change")
    assert result.deployments[1]["mode"] == "blue_green"
    assert result.metrics["min_serving"] == 10
    assert {i["role"] for i in result.instances if i["version"] == "2"} == {"candidate"}
    assert "router" in result.final[KEY]["agents"]


def test_pause_places_nothing_until_resume() -> None:
    result = run("pause-resume")
    placed = [e["t_ms"] for e in result.events if e["type"] == "deployment_instance_placed" and e["version"] == "2"]
    assert placed and not [t for t in placed if 80000.0 < t < 200000.0]
    assert "deployment_paused" in types(result, 1) and "deployment_running" in types(result, 1)
    assert result.metrics["min_serving"] == 9


def test_manual_rollback_creates_a_forward_version_copying_the_target() -> None:
    result = run("manual-rollback")
    v3 = result.versions[KEY][2]
    assert (v3["created_by"], v3["manifest_name"]) == ("rollback", "v1")
    assert v3["rollback"] == {"from_version": "2", "to_version": "1", "reason": "latency regression"}
    assert result.errors[0]["message"] == f"no rollback target found for deployment {KEY}"
    crashed = [i for i in result.instances if i["agent_id"] == "worker-3" and i["version"] == "2"]
    assert [i["restarts"] for i in crashed] == [1]


def test_same_file_and_seed_give_byte_identical_json() -> None:
    scenario = read_scenario(path_of("rolling-bad-version-auto-revert"))
    assert run_scenario(scenario).dumps() == run_scenario(scenario).dumps()


def test_the_seed_argument_overrides_the_file() -> None:
    default, other = run("rolling-success"), run("rolling-success", seed=99)
    assert (default.seed, other.seed) == (1, 99)
    assert default.dumps() != other.dumps()
    assert other.dumps() == run_scenario(read_scenario(path_of("rolling-success")), seed=99).dumps()


def test_until_ms_cuts_the_run_short() -> None:
    result = run_scenario(read_scenario(path_of("rolling-success")), until_ms=70000.0)
    assert result.end_ms == 70000.0
    assert [d["status"] for d in result.deployments] == ["successful", "running"]
    assert result.metrics["per_deployment"][1]["duration_ms"] is None


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("seed", [None, 2, 3])
def test_every_example_tells_one_story(name: str, seed: int | None) -> None:
    """final, instances and metrics agree, whatever the seed."""
    assert_one_story(run(name, seed))
