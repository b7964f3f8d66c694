"""`sim tune`: the race picks the policy an exhaustive sweep with many seeds picks, on fewer runs; its elimination
rules on hand-made measures (the sign test's threshold, a candidate set aside coming back when the one that
outpaced it violates, ties); a candidate violating a requirement never wins."""

from __future__ import annotations

import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from sim import Standing, Tuning, TuningVerdict, load_scenario, run_scenario, tune
from sim.jsonfile import read_json
from sim.overrides import PathError, with_overrides
from sim.requirements import RequirementError, measures_of, parse_requirement
from sim.schema import ScenarioError
from sim.sequential import Decision, Verdict, lower_bound
from sim.sweep import run_seeds
from sim.tuning import GridError, _beats, _compare, _in_race, _Racer, grid_points
from tests.sim.conftest import EXAMPLES

UPDATE = "manifests.v2.policies.update."
VARY = {UPDATE + "max_parallel": [1, 2, 3], UPDATE + "healthy_deadline_ms": [6000, 60000]}
"""max_parallel 3 leaves 1 of 4 agents serving; a 6 s healthy deadline fails a good instance that starts slowly
(a 1.5 s start, then 5 s of min_healthy_ms); max_parallel 1 is slower than 2."""
REQUIRE = ("min_serving >= 2", "outcome == successful")


def flaky() -> Any:
    """rolling-success with 4 agents, and one start attempt of w:2 in ten crashing."""
    document = with_overrides(
        read_json(EXAMPLES / "rolling-success.json"),
        {"manifests.v1.nodes.0.count": 4, "manifests.v2.nodes.0.count": 4},
    )
    document["behaviors"]["v2"] = {"start_failure": 0.1}
    return document


@pytest.fixture(scope="module")
def threads() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2) as executor:
        yield executor


@pytest.fixture(scope="module")
def tuned(threads: ThreadPoolExecutor) -> Tuning:
    requirements = [parse_requirement(text) for text in REQUIRE]
    return tune(flaky(), VARY, requirements, "duration_ms", file="flaky.json", bound=0.05, executor=threads, workers=2)


def exhaustive_winner(runs: int) -> dict[str, Any]:
    """What a sweep of `runs` seeds at every point says: of the points with no violation, the smallest mean."""
    requirements = [parse_requirement(text) for text in REQUIRE]
    seeds = run_seeds(load_scenario(flaky()).seed, runs)
    best: tuple[float, dict[str, Any]] | None = None
    for params in grid_points(VARY):
        scenario = load_scenario(with_overrides(flaky(), params))
        measured = [measures_of(run_scenario(scenario, seed=seed)) for seed in seeds]
        if all(r.satisfied_by(m) for r in requirements for m in measured):
            mean = math.fsum(m["duration_ms"] for m in measured) / runs
            if best is None or mean < best[0]:
                best = (mean, params)
    assert best is not None
    return best[1]


def test_tune_picks_what_an_exhaustive_sweep_with_many_seeds_picks(tuned: Tuning) -> None:
    assert tuned.verdict is TuningVerdict.FOUND
    assert tuned.winner is not None
    assert (
        dict(tuned.winner.params)
        == exhaustive_winner(200)
        == {
            UPDATE + "max_parallel": 2,
            UPDATE + "healthy_deadline_ms": 60000,
        }
    )


def test_tune_spends_far_fewer_runs_than_an_exhaustive_sweep(tuned: Tuning) -> None:
    # the winner needs 160 runs to hold at bound 0.05; a sweep runs all 6 candidates that often
    assert tuned.verification_runs == 160
    assert tuned.exhaustive_runs == 6 * 160
    assert tuned.runs == sum(c.runs for c in tuned.candidates)
    assert tuned.ratio < 0.5


def test_a_candidate_violating_a_requirement_is_never_the_winner(tuned: Tuning) -> None:
    standings = {
        (c.params[UPDATE + "max_parallel"], c.params[UPDATE + "healthy_deadline_ms"]): c for c in tuned.candidates
    }
    for (parallel, deadline), candidate in standings.items():
        if parallel == 3 or deadline == 6000:
            assert candidate.standing is Standing.VIOLATED
            assert any(j.decision.verdict is Verdict.VIOLATED for j in candidate.judgements)
            assert candidate is not tuned.winner
    assert tuned.winner is not None
    assert all(j.decision.verdict is Verdict.HOLDS for j in tuned.winner.judgements)
    assert standings[(1, 60000)].standing is Standing.OUTPACED
    assert standings[(1, 60000)].outpaced_by == (tuned.winner.index,)
    assert tuned.runner_up is standings[(1, 60000)]


def test_the_winner_is_verified_by_the_rule_of_sim_verify(tuned: Tuning) -> None:
    assert tuned.winner is not None
    for judgement in tuned.winner.judgements:
        assert judgement.decision == tuned.plan.decide(0, 160)
        assert judgement.decision.high < tuned.plan.bound


def test_the_json_has_the_winner_runner_up_and_runs(tuned: Tuning) -> None:
    report = tuned.to_json()
    assert report["winner"] == {UPDATE + "max_parallel": 2, UPDATE + "healthy_deadline_ms": 60000}
    assert report["runner_up"] == {UPDATE + "max_parallel": 1, UPDATE + "healthy_deadline_ms": 60000}
    assert (report["runs"], report["exhaustive_runs"]) == (tuned.runs, 960)
    assert report["ratio"] == tuned.runs / 960
    assert [c["standing"] for c in report["candidates"]].count("holds") == 1
    assert report["candidates"][0]["requirements"][0]["requirement"] == "min_serving >= 2"


def racer(index: int, values: list[float], *verdicts: Verdict) -> _Racer:
    """A candidate with hand-made measures and, per requirement, the verdict of its last look."""
    made = _Racer(index, {"x": index}, "{}", {"x": index}, len(verdicts))
    made.values = list(values)
    for tally, verdict in zip(made.tallies, verdicts, strict=True):
        tally.decision = Decision(verdict, len(values), 0, 0.0, 1.0)
    return made


def test_the_sign_test_sets_aside_at_the_first_count_where_every_win_is_enough() -> None:
    alpha = 0.001
    needed = math.floor(math.log(alpha) / math.log(0.5)) + 1  # alpha^(1/n) > 1/2
    for n in (needed - 1, needed):
        fast, slow = racer(0, [1.0] * n, Verdict.UNDECIDED), racer(1, [2.0] * n, Verdict.UNDECIDED)
        assert _beats(fast, slow, alpha) == (n == needed) == (lower_bound(n, n, alpha) > 0.5)
        assert not _beats(slow, fast, alpha)


def test_the_sign_test_counts_only_runs_that_differ_and_common_runs() -> None:
    ties = [5.0] * 100
    assert not _beats(racer(0, ties, Verdict.HOLDS), racer(1, ties, Verdict.HOLDS), 0.01)
    # 20 wins among 100 otherwise tied runs: 20 of 20 differing ones
    first, second = racer(0, [1.0] * 20 + ties[20:], Verdict.HOLDS), racer(1, ties, Verdict.HOLDS)
    assert _beats(first, second, 0.01)
    # only the runs both made count: the faster one's extra runs say nothing
    assert not _beats(racer(0, [1.0] * 100, Verdict.HOLDS), racer(1, [2.0] * 3, Verdict.UNDECIDED), 0.01)


def test_a_run_without_a_value_is_worse_than_any() -> None:
    assert _beats(racer(0, [1e12] * 30, Verdict.HOLDS), racer(1, [math.inf] * 30, Verdict.HOLDS), 0.01)


def test_a_candidate_outpaced_by_one_that_then_violates_comes_back() -> None:
    fast = racer(0, [1.0] * 20, Verdict.UNDECIDED)
    slow = racer(1, [2.0] * 20, Verdict.UNDECIDED)
    racers = [fast, slow]
    _compare(racers, 0.001)
    assert slow.outpaced_by == {0}
    assert not _in_race(slow, racers)
    assert fast.tallies[0].decision is not None
    fast.tallies[0].decision = Decision(Verdict.VIOLATED, 40, 20, 0.3, 0.7)
    assert _in_race(slow, racers)


def test_outpacing_never_makes_a_cycle_so_someone_stays_in_the_race() -> None:
    # a beats b, b beats c, c beats a on most common runs (non-transitive), each by a clear margin
    a = racer(0, [1.0] * 20 + [3.0] * 20 + [2.0] * 20, Verdict.UNDECIDED)
    b = racer(1, [2.0] * 20 + [1.0] * 20 + [3.0] * 20, Verdict.UNDECIDED)
    c = racer(2, [3.0] * 20 + [2.0] * 20 + [1.0] * 20, Verdict.UNDECIDED)
    racers = [a, b, c]
    _compare(racers, 0.5)
    assert any(_in_race(r, racers) for r in racers)


def test_bad_input_is_refused_before_any_run(threads: ThreadPoolExecutor) -> None:
    requirements = [parse_requirement(REQUIRE[0])]
    cases: list[tuple[dict[str, list[Any]], str, type[Exception]]] = [
        ({}, "duration_ms", GridError),
        ({UPDATE + "max_parallel": []}, "duration_ms", GridError),
        ({UPDATE + "max_parallel": [1, 1]}, "duration_ms", GridError),
        ({UPDATE + "max_paralel": [1, 2]}, "duration_ms", PathError),
        ({UPDATE + "healthy_deadline_ms": [4000, 60000]}, "duration_ms", ScenarioError),
        ({UPDATE + "max_parallel": [1, 2]}, "outcome", RequirementError),
    ]
    for vary, minimize, error in cases:
        with pytest.raises(error):
            tune(flaky(), vary, requirements, minimize, file="f", executor=threads, workers=2)
    with pytest.raises(RequirementError, match="no requirements"):
        tune(flaky(), {UPDATE + "max_parallel": [1]}, None, "duration_ms", file="f", executor=threads, workers=2)
