"""`sim verify --search-worst` (sim/worst.py): the supports it searches, the schedules it makes of a scenario's
knobs, and counterexamples with a known answer that replay to the value reported."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from click.testing import CliRunner

from mn_deploy.cli import main
from sim.distributions import Const, Distribution, Empirical, Exponential, LogNormal, Normal, Uniform
from sim.jsonfile import read_json
from sim.overrides import parse_assignment, with_overrides
from sim.requirements import measures_of, parse_requirement
from sim.scenario import load_scenario, run_scenario
from sim.worst import Knob, knobs, schedules, search_worst, support
from tests.sim.conftest import EXAMPLES

REVERT = EXAMPLES / "rolling-bad-version-auto-revert.json"
BROKEN = EXAMPLES.parents[1] / "notebooks" / "scenarios" / "broken-v2.json"
RARE = "reverted_within_ms <= 30000"
"""On REVERT: no revert of 640 seeded runs takes 27 s, but with every start at its latest one takes 47 s."""


@pytest.fixture(scope="module")
def threads() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2) as executor:
        yield executor


@pytest.mark.parametrize(
    ("distribution", "low", "high"),
    [
        (Const(5.0), 5.0, 5.0),
        (Uniform(300.0, 700.0), 300.0, 700.0),
        (Empirical((9.0, 2.0, 4.0)), 2.0, 9.0),
        (Exponential(1000.0), 1000.0 * -math.log(0.999), 1000.0 * math.log(1000)),
        (LogNormal(1500.0, 0.4), 1500.0 * math.exp(-3.090232 * 0.4), 1500.0 * math.exp(3.090232 * 0.4)),
        (Normal(100.0, 10.0), 100.0 - 30.90232, 100.0 + 30.90232),
        (Normal(10.0, 10.0), 0.0, 10.0 + 30.90232),
    ],
)
def test_support_is_the_range_or_the_middle_99_8_percent(distribution: Distribution, low: float, high: float) -> None:
    assert support(distribution) == pytest.approx((low, high), rel=1e-6)


def test_knobs_are_the_fields_a_scenario_writes_with_more_than_one_possible_value() -> None:
    document = read_json(BROKEN)
    document["behaviors"]["v2"]["crash_after_ms"] = {"uniform": [0, 60000]}
    document["behaviors"]["v2"]["agents"] = {"worker-3": {"ready_ms": {"uniform": [100, 900]}}}
    found = {k.path: k.values for k in knobs(document)}
    start = support(LogNormal(1500.0, 0.4))
    # v2's checks always fail (1.0) and ready_ms is a constant: neither is a knob. A crash comes at either end of its
    # support or just after the healthy verdict: ready (200) + checks (300 or 700) + min_healthy_ms (5000) + 1
    assert found == {
        "behaviors.default.start_ms": start,
        "behaviors.default.check_ms": (300.0, 700.0),
        "behaviors.v2.crash_after_ms": (0.0, 5501.0, 5901.0, 60000.0),
        "behaviors.v2.start_failure": (0.0, 1.0),
        "behaviors.v2.agents.worker-3.ready_ms": (100.0, 900.0),
    }


def test_a_crash_may_also_come_halfway_through_each_step_pause_its_verdict_starts() -> None:
    """The progressive example's deploy brings steps pausing 60 s and 30 s (in its overrides): a crash just after a
    verdict (5501 or 5901 ms of running) plus half a pause lands while that step waits."""
    document = read_json(EXAMPLES / "progressive-steps.json")
    document["behaviors"]["default"]["crash_after_ms"] = {"uniform": [0, 100000]}
    found = {k.path: k.values for k in knobs(document)}
    verdicts = (5501.0, 5901.0)
    during_pauses = tuple(v + pause / 2 for pause in (30000, 60000) for v in verdicts)
    assert found["behaviors.default.crash_after_ms"] == (0.0, *verdicts, *during_pauses, 100000.0)


def test_every_schedule_is_tried_when_there_are_few_and_a_seeded_sample_when_many() -> None:
    few = [Knob("a", (1.0, 2.0)), Knob("b", (0.0, 1.0, 5.0))]
    tried, total = schedules(few)
    assert total == len(tried) == 6
    assert {(s["a"], s["b"]) for s in tried} == {(a, b) for a in (1.0, 2.0) for b in (0.0, 1.0, 5.0)}
    many = [Knob(f"k{i}", (0.0, 1.0)) for i in range(12)]
    tried, total = schedules(many, limit=50)
    assert (len(tried), total) == (50, 4096)
    assert tried[0] == {f"k{i}": 0.0 for i in range(12)} and tried[1] == {f"k{i}": 1.0 for i in range(12)}
    assert len({tuple(s.values()) for s in tried}) == 50
    assert schedules(many, limit=50) == (tried, total)


def _replayed(command: str, document: Any) -> dict[str, Any]:
    """The measures of the run a reproduce command names, run here."""
    words = command.split()
    sets = [parse_assignment(words[i + 1]) for i, word in enumerate(words) if word == "--set"]
    seed = int(words[words.index("--seed") + 1])
    return measures_of(run_scenario(load_scenario(with_overrides(document, dict(sets))), seed=seed))


def test_a_rare_violation_is_found_and_its_schedule_replays(threads: ThreadPoolExecutor) -> None:
    document = read_json(REVERT)
    worst = search_worst(document, [parse_requirement(RARE)], file=str(REVERT), executor=threads, workers=2)
    assert (worst.tried, worst.schedules) == (4, 4)
    (found,) = worst.counterexamples
    assert found.schedule["behaviors.default.start_ms"] == support(LogNormal(1500.0, 0.4))[1]
    assert found.value > 30_000
    assert found.reproduce.startswith(f"mn-deploy sim run {REVERT} --set behaviors.default.start_ms=")
    assert _replayed(found.reproduce, document)["reverted_within_ms"] == found.value


def test_no_counterexample_when_every_schedule_meets_the_requirements(threads: ThreadPoolExecutor) -> None:
    overrides = {
        "manifests.v2.policies.update.healthy_deadline_ms": 30_000,
        "manifests.v2.policies.update.progress_deadline_ms": 60_000,
    }
    document = with_overrides(read_json(BROKEN), overrides)
    requirements = [parse_requirement("reverted_within_ms <= 120000"), parse_requirement("max_bad_serving <= 2")]
    worst = search_worst(document, requirements, file=str(BROKEN), overrides=overrides, executor=threads, workers=2)
    assert (worst.tried, worst.counterexamples) == (8, ())


def test_the_command_exits_1_on_a_violating_schedule_even_when_the_sampled_runs_hold() -> None:
    runner = CliRunner()
    args = ["sim", "verify", str(REVERT), "--require", RARE, "--bound", "0.1", "--workers", "2"]
    assert runner.invoke(main, args).exit_code == 0
    result = runner.invoke(main, [*args, "--search-worst", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["verdict"] == "holds"
    worst = report["worst_case"]
    assert (worst["tried"], worst["schedules"]) == (4, 4)
    assert [found["requirement"] for found in worst["counterexamples"]] == [RARE]
    plain = runner.invoke(main, [*args, "--search-worst"])
    assert "Worst case: 4 of 4 schedules of 2 knobs tried; 1 requirement(s) violated" in plain.stdout.splitlines()
