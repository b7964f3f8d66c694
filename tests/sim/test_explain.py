"""`sim.explain`: the story of example runs names the rule of docs/rules.md behind each decision."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from click.testing import Result as ClickResult

import mn_deploy.sim_cli
from mn_deploy.cli import main
from sim import Result, StoryLine, explain, read_scenario, run_scenario
from tests.sim.conftest import EXAMPLES

RULES_DOC = Path(__file__).resolve().parents[2] / "docs" / "rules.md"


def _story(name: str) -> list[StoryLine]:
    return explain(run_scenario(read_scenario(EXAMPLES / f"{name}.json")))


def _rules(story: list[StoryLine], what: str) -> list[str]:
    return [line.rule for line in story if line.what == what]


def test_an_auto_revert_names_r9_for_the_failure_and_r10_for_the_revert_and_its_rollout() -> None:
    story = _story("rolling-bad-version-auto-revert")
    failed = next(line for line in story if line.what == "failed")
    assert (failed.rule, failed.why) == ("R9", "Failed due to unhealthy instances")
    reverted = next(line for line in story if line.what == "reverted")
    assert reverted.rule == "R10" and "to version 1" in reverted.why
    revert = [line for line in story if line.deployment_id == "dep_agent-api_3"]
    assert [(line.what, line.rule) for line in revert[:2]] == [("started", "R10"), ("instance_placed", "R10")]
    assert revert[-1].what == "successful" and revert[-1].rule == "R5"
    replacements = [line for line in story if line.what == "instance_placed" and line.rule == "R9"]
    assert [line.agents for line in replacements] == [("worker-0",), ("worker-1",)]
    assert _rules(story, "instance_unhealthy") == ["R8"] * 3


def test_a_manual_canary_promote_names_r6_the_refusal_r11_and_the_rest_rolls_under_r5() -> None:
    story = _story("canary-manual-promote")
    canaries = next(line for line in story if line.what == "instance_placed" and line.rule == "R6")
    assert canaries.agents == ("worker-0", "worker-1") and canaries.from_ms == 60_000.0
    refused = next(line for line in story if line.what == "promote refused")
    assert (refused.rule, refused.deployment_id) == ("R11", "")
    assert refused.why == "deployment is running, expected awaiting_promotion"
    ready = next(line for line in story if line.what == "canary_ready")
    assert ready.rule == "R6" and "awaiting the operator's promote" in ready.why
    promoted = next(line for line in story if line.what == "promoted")
    assert (promoted.rule, promoted.from_ms) == ("R6/R11", 120_000.0)
    after = [line for line in story if line.what == "instance_placed" and line.from_ms >= 120_000.0]
    assert {line.rule for line in after} == {"R5"} and "max_parallel=2" in after[0].why


def test_a_progress_deadline_failure_names_r9_after_r8_verdicts_at_the_healthy_deadline() -> None:
    story = _story("progress-deadline")
    failed = next(line for line in story if line.what == "failed")
    assert (failed.rule, failed.why, failed.from_ms) == ("R9", "Failed due to progress deadline", 150_000.0)
    unhealthy = [line for line in story if line.what == "instance_unhealthy"]
    assert {line.rule for line in unhealthy} == {"R8"} and unhealthy[0].from_ms == 120_000.0


def test_a_first_deployment_is_three_merged_lines_spanning_their_times() -> None:
    story = _story("rolling-success")
    first = [line for line in story if line.deployment_id == "dep_agent-api_1"]
    assert [(line.what, line.rule, len(line.agents)) for line in first] == [
        ("created", "R3", 0),
        ("instance_placed", "R3", 10),
        ("instance_healthy", "R8", 10),
        ("successful", "R5", 0),
    ]
    healthy = first[2]
    assert healthy.from_ms < healthy.to_ms and healthy.agents_text() == "10 agents"


def test_blue_green_and_progressive_name_their_own_rules() -> None:
    blue_green = _story("blue-green-topology-change")
    assert _rules(blue_green, "started")[-1] == "R7" and _rules(blue_green, "promoted") == ["R7"]
    progressive = _story("progressive-steps")
    assert _rules(progressive, "canary_ready") == ["progressive"]
    assert _rules(progressive, "step_ready") == ["progressive"]
    promoted = next(line for line in progressive if line.what == "promoted")
    assert promoted.why.startswith("the soak ended")


def test_a_rollback_and_a_pause_are_operator_actions_under_r11() -> None:
    rollback = _story("manual-rollback")
    assert _rules(rollback, "started")[-1] == "R11" and _rules(rollback, "rollback refused") == ["R11"]
    paused = _story("pause-resume")
    assert _rules(paused, "paused") == ["R11"] and _rules(paused, "running") == ["R11"]


def test_every_rule_named_is_a_section_of_the_rules_doc() -> None:
    sections = set(re.findall(r"^#+ (R\d+b?|Progressive)\b", RULES_DOC.read_text(), flags=re.MULTILINE))
    named = {
        part
        for path in sorted(EXAMPLES.glob("*.json"))
        for line in explain(run_scenario(read_scenario(path)))
        for part in line.rule.split("/")
    }
    assert {rule.replace("progressive", "Progressive") for rule in named} <= sections


def test_a_saved_result_explains_like_the_run() -> None:
    run = run_scenario(read_scenario(EXAMPLES / "canary-manual-promote.json"))
    saved = Result.from_json(json.loads(run.dumps()))
    assert explain(saved) == explain(run)
    assert explain(run)[-1].to_json() | {"from_ms": 0, "to_ms": 0} == {
        "from_ms": 0,
        "to_ms": 0,
        "deployment_id": "dep_agent-api_2",
        "what": "successful",
        "agents": [],
        "rule": "R5",
        "why": "every changed agent healthy: version 2 stable",
    }


def _cli(*args: str) -> ClickResult:
    return CliRunner().invoke(main, ["sim", "run", str(EXAMPLES / "canary-manual-promote.json"), *args])


def test_sim_run_explain_prints_the_story_after_the_summary() -> None:
    plain = _cli("--explain")
    assert plain.exit_code == 0, plain.output
    lines = plain.output.splitlines()
    story = explain(run_scenario(read_scenario(EXAMPLES / "canary-manual-promote.json")))
    at = max(i for i, line in enumerate(lines) if "min_serving" in line)
    for told in story:  # each decision on a line of its own, in time order, after the summary
        at = next(i for i in range(at + 1, len(lines)) if told.why in lines[i] and told.rule in lines[i])
    refused = next(line for line in lines if "promote refused" in line)
    assert "61.0" in refused and "R11" in refused
    assert "promote refused" not in _cli().output


def test_sim_run_explain_in_a_terminal_is_a_rich_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mn_deploy.sim_cli, "plain_output", lambda: False)
    shown = _cli("--explain").output
    assert "What happened, and why" in shown and "R6/R11" in shown and "66.8-68.0" in shown


def test_sim_run_explain_and_json_exclude_each_other() -> None:
    refused = _cli("--explain", "--json")
    assert refused.exit_code == 2 and refused.stdout == ""
    assert refused.stderr.startswith("error: --explain and --json exclude each other")
