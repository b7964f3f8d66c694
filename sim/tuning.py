"""Finding the fastest safe policy: a race over a grid of policies (docs/verification.md "Tuning").

    tuning = tune(read_json("scenario.json"), {"manifests.v2.policies.update.max_parallel": [1, 2, 4]},
                  [parse_requirement("min_serving >= 8")], "duration_ms", file="scenario.json", workers=2)
    tuning.winner             # the candidate verified to meet every requirement with the smallest mean measure

Every candidate (a grid point) runs the seeds a verification runs (run i: child i of the scenario's seed), so
candidates meet the same draws and are compared run by run (common random numbers). The race takes its verdicts
at the looks of the verification's plan (10, 20, 40, ... runs) and runs a candidate to the next look only while it
still matters:

- a candidate with a requirement shown violated (sim/sequential.py, the rule of `sim verify`) is out;
- a candidate confidently worse than another still in the race is set aside: on the runs both made, it measured
  more on most of the runs where the two differ, by an exact sign test (the Clopper-Pearson lower bound of that
  share above 1/2). It comes back, and catches up on the common seeds, if every candidate that outpaced it is
  later shown to violate a requirement, so a candidate is never lost to one that cannot win;
- a candidate whose every requirement holds stops running: its verdict is in, and later comparisons use the
  runs it made.

The race ends when no candidate still in it has an undecided requirement, or at `max_runs`. The winner is, of the
candidates in the race whose every requirement holds, the one with the smallest mean measure. The sign tests
share `1 - confidence` by Bonferroni over every look and every ordered pair, so the chance that any comparison
sets a candidate aside wrongly is at most that.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import ExitStack, closing
from dataclasses import dataclass
from enum import StrEnum
from itertools import product
from typing import Any

from sim.fanout import completions
from sim.measures import NUMBERS, REVERSION
from sim.overrides import format_assignment, with_overrides
from sim.requirements import Requirement, RequirementError
from sim.scenario import load_scenario
from sim.schema import ScenarioError
from sim.sequential import Plan, Verdict, lower_bound
from sim.stats import Estimate, mean_interval
from sim.sweep import MAX_POINTS, default_workers, ignore_interrupts, run_seeds
from sim.verification import (
    BOUND,
    CONFIDENCE,
    DEFAULT_MAX_RUNS,
    Check,
    Judgement,
    Tally,
    check_run,
    count_run,
    requirements_to_judge,
)

MINIMIZABLE = (*NUMBERS, *REVERSION)
"""The measures a tuner may minimise: every numeric one."""


class Standing(StrEnum):
    """Where a candidate ended the race."""

    HOLDS = "holds"
    """Every requirement verified to hold."""
    VIOLATED = "violated"
    """A requirement verified violated."""
    OUTPACED = "outpaced"
    """Set aside: confidently worse on the measure than a candidate still in the race."""
    UNDECIDED = "undecided"
    """Still in the race at `max_runs` with a requirement undecided."""


class TuningVerdict(StrEnum):
    FOUND = "found"
    """A winner: verified to meet every requirement, and no candidate still in the race is undecided."""
    NONE = "none"
    """Every candidate violates a requirement."""
    UNDECIDED = "undecided"
    """A candidate still in the race is undecided at `max_runs`: it might be a better winner."""


class GridError(ValueError):
    """A grid that cannot be raced: nothing to vary, an axis without values or with one twice, too many points."""


def grid_points(vary: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the values, by path (last path fastest, as a sweep's grid)."""
    return [dict(zip(vary, values, strict=True)) for values in product(*vary.values())]


def _label(params: Mapping[str, Any]) -> str:
    return ", ".join(format_assignment(path.rsplit(".", 1)[-1], value) for path, value in params.items())


class _Racer:
    """One candidate during the race: its requirements' tallies and its measure, run by run."""

    def __init__(
        self, index: int, params: dict[str, Any], text: str, replay: dict[str, Any], requirements: int
    ) -> None:
        self.index = index
        self.params = params
        self.text = text
        self.replay = replay
        """Every value set on the scenario, for the replay commands."""
        self.tallies = [Tally() for _ in range(requirements)]
        self.values: list[float] = []
        self.outpaced_by: set[int] = set()

    @property
    def runs(self) -> int:
        return len(self.values)

    @property
    def violated(self) -> bool:
        return any(t.decision is not None and t.decision.verdict is Verdict.VIOLATED for t in self.tallies)

    @property
    def holds(self) -> bool:
        return all(t.decision is not None and t.decision.verdict is Verdict.HOLDS for t in self.tallies)

    def add(self, run: int, seed: int, check: Check, minimize: str, file: str) -> None:
        count_run(self.tallies, run, seed, check, file, self.replay)
        value = check.measures.get(minimize)
        self.values.append(math.inf if value is None else float(value))


def _beats(first: _Racer, second: _Racer, alpha: float) -> bool:
    """Whether `first` measured less than `second` on more than half the common runs where they differ, shown by
    the one-sided Clopper-Pearson lower bound at level `alpha` of that share (an exact sign test)."""
    common = min(first.runs, second.runs)
    pairs = list(zip(first.values[:common], second.values[:common], strict=True))
    wins = sum(a < b for a, b in pairs)
    differ = wins + sum(b < a for a, b in pairs)
    return differ > 0 and lower_bound(wins, differ, alpha) > 0.5


@dataclass(frozen=True)
class Candidate:
    """One grid point at the end of the race."""

    index: int
    params: Mapping[str, Any]
    standing: Standing
    runs: int
    judgements: tuple[Judgement, ...]
    estimate: Estimate
    """The measure's mean over its runs with its bootstrap interval; infinite when a run had no value."""
    outpaced_by: tuple[int, ...]
    """The candidates (by index) shown better on the measure."""

    @property
    def label(self) -> str:
        """`max_parallel=2, healthy_deadline_ms=30000`: each path by its last part."""
        return _label(self.params)

    @property
    def violation_high(self) -> float:
        """The highest upper bound of any requirement's probability of violation, at the look that decided it (or
        the last): below the bound, every requirement holds."""
        return max(j.decision.high for j in self.judgements)

    def to_json(self) -> dict[str, Any]:
        estimate = self.estimate
        return {
            "index": self.index,
            "params": dict(self.params),
            "label": self.label,
            "standing": self.standing.value,
            "runs": self.runs,
            "estimate": {
                "mean": _number(estimate.mean),
                "low": _number(estimate.low),
                "high": _number(estimate.high),
                "runs": estimate.n,
            },
            "outpaced_by": list(self.outpaced_by),
            "requirements": [j.to_json() for j in self.judgements],
        }


def _number(value: float | None) -> float | str | None:
    return "infinity" if value is not None and math.isinf(value) else value


def _estimate(values: Sequence[float]) -> Estimate:
    """The mean and its bootstrap interval (sim/stats.py); a run without a value makes the mean infinite."""
    if any(math.isinf(v) for v in values):
        return Estimate(len(values), math.inf, None, None)
    return mean_interval(values)


def _rank(candidate: Candidate) -> tuple[float, int]:
    mean = candidate.estimate.mean
    return (math.inf if mean is None else mean, candidate.index)


@dataclass(frozen=True)
class Tuning:
    scenario: str
    file: str
    minimize: str
    vary: Mapping[str, tuple[Any, ...]]
    requirements: tuple[Requirement, ...]
    plan: Plan
    comparison_alpha: float
    """The level of each one-sided sign test: 1 - confidence over every look and ordered pair."""
    candidates: tuple[Candidate, ...]

    @property
    def verdict(self) -> TuningVerdict:
        if any(c.standing is Standing.UNDECIDED for c in self.candidates):
            return TuningVerdict.UNDECIDED
        return TuningVerdict.FOUND if self.winner is not None else TuningVerdict.NONE

    @property
    def winner(self) -> Candidate | None:
        """Of the candidates whose every requirement holds, the one with the smallest mean measure."""
        holding = [c for c in self.candidates if c.standing is Standing.HOLDS]
        return min(holding, key=_rank, default=None)

    @property
    def runner_up(self) -> Candidate | None:
        """The next best candidate not shown to violate a requirement: by standing (holds, then undecided, then
        outpaced), then by mean measure."""
        order = (Standing.HOLDS, Standing.UNDECIDED, Standing.OUTPACED)
        rest = [c for c in self.candidates if c.standing in order and c is not self.winner]
        return min(rest, key=lambda c: (order.index(c.standing), *_rank(c)), default=None)

    def why_out(self, candidate: Candidate) -> str:
        """What ended a candidate's race: the requirements it violates, or who outpaced it ("" when neither)."""
        if candidate.standing is Standing.VIOLATED:
            violated = (j.requirement for j in candidate.judgements if j.decision.verdict is Verdict.VIOLATED)
            return "violates " + ", ".join(str(r) for r in violated)
        if candidate.standing is Standing.OUTPACED:
            return "slower than " + "; ".join(self.candidates[i].label for i in candidate.outpaced_by)
        return ""

    @property
    def runs(self) -> int:
        """The runs made, over every candidate."""
        return sum(c.runs for c in self.candidates)

    @property
    def verification_runs(self) -> int:
        """The most runs any candidate's verdicts needed: the runs per point a sweep needs to reach them all."""
        return max(c.runs for c in self.candidates)

    @property
    def exhaustive_runs(self) -> int:
        """An exhaustive sweep of the grid: every candidate run `verification_runs` times."""
        return len(self.candidates) * self.verification_runs

    @property
    def ratio(self) -> float:
        return self.runs / self.exhaustive_runs

    def to_json(self) -> dict[str, Any]:
        winner, runner_up, plan = self.winner, self.runner_up, self.plan
        return {
            "scenario": self.scenario,
            "file": self.file,
            "verdict": self.verdict.value,
            "minimize": self.minimize,
            "winner": None if winner is None else dict(winner.params),
            "runner_up": None if runner_up is None else dict(runner_up.params),
            "runs": self.runs,
            "exhaustive_runs": self.exhaustive_runs,
            "ratio": self.ratio,
            "verification_runs": self.verification_runs,
            "vary": {path: list(values) for path, values in self.vary.items()},
            "requirements": [str(r) for r in self.requirements],
            "bound": plan.bound,
            "confidence": plan.confidence,
            "max_runs": plan.max_runs,
            "looks": list(plan.looks),
            "alpha_per_look": plan.alpha,
            "comparison_alpha": self.comparison_alpha,
            "candidates": [c.to_json() for c in self.candidates],
        }


def _check_vary(document: Mapping[str, Any], vary: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """The grid's points, each checked to make a valid scenario; raises GridError for an empty or huge grid,
    PathError for a path not in the scenario, ScenarioError for a value the scenario refuses."""
    if not vary:
        raise GridError("nothing to vary: give at least one --vary PATH=V1,V2,...")
    for path, values in vary.items():
        if not values:
            raise GridError(f"{path}: lists no value")
        texts = [json.dumps(v, sort_keys=True) for v in values]
        if len(set(texts)) < len(texts):
            raise GridError(f"{path}: lists a value twice")
    if math.prod(len(values) for values in vary.values()) > MAX_POINTS:
        raise GridError(f"the grid must have at most {MAX_POINTS} points (the product of the value counts)")
    points = grid_points(vary)
    for params in points:
        try:
            load_scenario(with_overrides(document, params))
        except ScenarioError as error:
            raise ScenarioError(error.path, f"{error.problem} (at {_label(params)})") from None
    return points


def tune(
    document: Mapping[str, Any],
    vary: Mapping[str, Sequence[Any]],
    requirements: Sequence[Requirement] | None = None,
    minimize: str = "duration_ms",
    *,
    file: str,
    overrides: Mapping[str, Any] | None = None,
    bound: float = BOUND,
    confidence: float = CONFIDENCE,
    max_runs: int = DEFAULT_MAX_RUNS,
    workers: int | None = None,
    executor: Executor | None = None,
    progress: Callable[[int], None] | None = None,
) -> Tuning:
    """Race the grid `vary` (dotted path to its values, as a sweep's grid) over the scenario `document` for the
    candidate that minimises the mean of `minimize` among those verified to meet `requirements` (default: the
    scenario's own) at `confidence` with a probability of violation below `bound`. `file` and `overrides` (the
    values already set in `document`) only make the replay commands. Runs go to `executor`, else a process pool
    of `workers`; `progress` gets the runs made so far. Raises ScenarioError, PathError, RequirementError,
    GridError or ValueError (a bad bound, confidence or maximum) for bad input, before any run."""
    scenario = load_scenario(document)
    judged = requirements_to_judge(scenario, requirements)
    if minimize not in MINIMIZABLE:
        raise RequirementError(f"cannot minimise {minimize!r}: not a numeric measure (one of {', '.join(MINIMIZABLE)})")
    plan = Plan(bound, confidence, max_runs)
    points = _check_vary(document, vary)
    racers = [
        _Racer(i, params, json.dumps(with_overrides(document, params)), {**(overrides or {}), **params}, len(judged))
        for i, params in enumerate(points)
    ]
    alpha = (1.0 - confidence) / (len(plan.looks) * max(1, len(racers) * (len(racers) - 1)))
    workers = workers or default_workers()
    made = 0
    with ExitStack() as stack:
        if executor is None:
            executor = stack.enter_context(ProcessPoolExecutor(workers, initializer=ignore_interrupts))
        for look in plan.looks:
            due = [r for r in racers if _in_race(r, racers) and not r.holds]
            if not due:
                break
            seeds = run_seeds(scenario.seed, look)
            work = [(racer, run) for racer in due for run in range(racer.runs, look)]
            calls = ((racer.text, seeds[run], judged) for racer, run in work)
            checks: dict[int, Check] = {}
            with closing(completions(executor, check_run, calls, 2 * workers)) as finished:
                for index, check in finished:
                    checks[index] = check
                    if progress is not None:
                        progress(made + len(checks))
            made += len(work)
            for index, (racer, run) in enumerate(work):
                racer.add(run, seeds[run], checks[index], minimize, file)
            for racer in due:
                for tally in racer.tallies:
                    tally.look(plan, look)
            _compare(racers, alpha)
    candidates = tuple(_candidate(r, racers, judged) for r in racers)
    return Tuning(
        scenario.name, file, minimize, {p: tuple(v) for p, v in vary.items()}, judged, plan, alpha, candidates
    )


def _in_race(racer: _Racer, racers: Sequence[_Racer]) -> bool:
    """Not violated, and not outpaced by a candidate that can still win (one not violated)."""
    return not racer.violated and all(racers[i].violated for i in racer.outpaced_by)


def _outpacers(racer: _Racer, racers: Sequence[_Racer]) -> set[int]:
    """Every candidate that outpaced `racer`, directly or through others."""
    found: set[int] = set()
    todo = list(racer.outpaced_by)
    while todo:
        index = todo.pop()
        if index not in found:
            found.add(index)
            todo.extend(racers[index].outpaced_by)
    return found


def _compare(racers: Sequence[_Racer], alpha: float) -> None:
    """Set aside each candidate in the race that another in the race beats by the sign test (never one that
    outpaced that other, so the relation has no cycle and someone always stays in the race)."""
    racing = [r for r in racers if _in_race(r, racers)]
    for first in racing:
        for second in racing:
            if first is second or first.index in second.outpaced_by:
                continue
            if second.index not in _outpacers(first, racers) and _beats(first, second, alpha):
                second.outpaced_by.add(first.index)


def _candidate(racer: _Racer, racers: Sequence[_Racer], judged: tuple[Requirement, ...]) -> Candidate:
    if racer.violated:
        standing = Standing.VIOLATED
    elif not _in_race(racer, racers):
        standing = Standing.OUTPACED
    else:
        standing = Standing.HOLDS if racer.holds else Standing.UNDECIDED
    judgements = tuple(
        Judgement(requirement, tally.decision, tally.first)
        for requirement, tally in zip(judged, racer.tallies, strict=True)
        if tally.decision is not None  # every racer runs to the first look
    )
    outpaced = tuple(sorted(racer.outpaced_by))
    return Candidate(racer.index, racer.params, standing, racer.runs, judgements, _estimate(racer.values), outpaced)
