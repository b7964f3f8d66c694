"""Statistical model checking of a scenario's requirements (docs/verification.md).

    verification = verify(read_json("examples/scenarios/rolling-bad-version-auto-revert.json"),
                          [parse_requirement("reverted_within_ms <= 120000")], file="...", workers=2)
    verification.verdict             # holds, violated or undecided
    verification.judgements[0]       # its runs, violations, interval and first violation

Run i uses the seed a sweep's run i uses (child i of `SeedSequence` of the scenario's seed), so two policies
verified on the same scenario meet the same draws (common random numbers) and any run replays alone with
`mn-deploy sim run FILE --seed N`. Runs go to any `concurrent.futures.Executor`, in batches up to each look of
the plan (sim/sequential.py); every requirement is judged on every run, and each keeps the verdict of the first
look that decided it. A run that raises violates every requirement, with its error kept.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from typing import Any

from sim.fanout import completions
from sim.reproduce import reproduce_command
from sim.requirements import Requirement, RequirementError, measures_of
from sim.scenario import Scenario, load_scenario, run_scenario
from sim.sequential import Decision, Plan, Verdict
from sim.sweep import cached_scenario, default_workers, ignore_interrupts, run_seeds

BOUND = 0.01
CONFIDENCE = 0.95
DEFAULT_MAX_RUNS = 10_000


@dataclass(frozen=True, slots=True)
class Check:
    """One run judged against every requirement: `met[i]` for requirement i, and the value of its measure."""

    met: tuple[bool, ...]
    values: tuple[Any, ...]
    error: str | None = None
    measures: Mapping[str, Any] = field(default_factory=dict)
    """Every measure of the run (none when it raised), for a tuner that minimises one."""


def check_run(document: str, seed: int, requirements: tuple[Requirement, ...]) -> Check:
    """Run the scenario (a JSON text) with `seed` and judge it (in a worker); a run that raises meets nothing."""
    try:
        measured = measures_of(run_scenario(cached_scenario(document), seed=seed))
    except Exception as error:
        message = " ".join(f"{type(error).__name__}: {error}".split())
        return Check(tuple(False for _ in requirements), tuple(None for _ in requirements), message)
    values = tuple(measured[r.measure] for r in requirements)
    return Check(tuple(r.satisfied_by(measured) for r in requirements), values, measures=measured)


@dataclass(frozen=True, slots=True)
class Violation:
    """The first run that broke a requirement, the value it measured (None: missing) and how to replay it."""

    run: int
    seed: int
    value: Any
    error: str | None
    reproduce: str


@dataclass(frozen=True, slots=True)
class Judgement:
    """One requirement's verdict: the look that decided it (or the last, undecided) and its first violation."""

    requirement: Requirement
    decision: Decision
    first_violation: Violation | None

    def to_json(self) -> dict[str, Any]:
        decision, first = self.decision, self.first_violation
        return {
            "requirement": str(self.requirement),
            "verdict": decision.verdict.value,
            "runs": decision.runs,
            "violations": decision.violations,
            "interval": [decision.low, decision.high],
            "first_violation": None
            if first is None
            else {
                "run": first.run,
                "seed": first.seed,
                "value": json_value(first.value),
                "error": first.error,
                "reproduce": first.reproduce,
            },
        }


def json_value(value: Any) -> Any:
    """A measured value for JSON: infinity (a failed version never reverted) as the text "infinity"."""
    return "infinity" if isinstance(value, float) and math.isinf(value) else value


@dataclass(frozen=True)
class Verification:
    scenario: str
    file: str
    plan: Plan
    runs: int
    """How many runs were made in all (the most any requirement needed)."""
    judgements: tuple[Judgement, ...]

    @property
    def verdict(self) -> Verdict:
        """Violated if any requirement is, else undecided if any is, else holds."""
        verdicts = {j.decision.verdict for j in self.judgements}
        for verdict in (Verdict.VIOLATED, Verdict.UNDECIDED):
            if verdict in verdicts:
                return verdict
        return Verdict.HOLDS

    def to_json(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "scenario": self.scenario,
            "file": self.file,
            "verdict": self.verdict.value,
            "bound": plan.bound,
            "confidence": plan.confidence,
            "max_runs": plan.max_runs,
            "looks": list(plan.looks),
            "alpha_per_look": plan.alpha,
            "runs": self.runs,
            "requirements": [j.to_json() for j in self.judgements],
        }


class Tally:
    """Violations so far of one requirement, and its first (a tuner keeps one per candidate and requirement)."""

    def __init__(self) -> None:
        self.violations = 0
        self.first: Violation | None = None
        self.decision: Decision | None = None
        """The latest look's; it stays once it is a verdict."""

    @property
    def decided(self) -> bool:
        return self.decision is not None and self.decision.verdict is not Verdict.UNDECIDED

    def look(self, plan: Plan, runs: int) -> None:
        """Take the verdict of the look at `runs` runs, unless an earlier look gave one."""
        if not self.decided:
            self.decision = plan.decide(self.violations, runs)


def requirements_to_judge(scenario: Scenario, requirements: Sequence[Requirement] | None) -> tuple[Requirement, ...]:
    """The requirements stated (given, they replace the scenario's), or the scenario's; raises RequirementError
    when there are none, since judging nothing would always hold."""
    judged = tuple(scenario.requirements if requirements is None else requirements)
    if not judged:
        raise RequirementError("no requirements: give --require EXPR or list them under requirements in the file")
    return judged


def verify(
    document: Mapping[str, Any],
    requirements: Sequence[Requirement] | None = None,
    *,
    file: str,
    overrides: Mapping[str, Any] | None = None,
    bound: float = BOUND,
    confidence: float = CONFIDENCE,
    max_runs: int = DEFAULT_MAX_RUNS,
    workers: int | None = None,
    executor: Executor | None = None,
    progress: Callable[[int], None] | None = None,
) -> Verification:
    """Judge the scenario `document` (already with `overrides` applied; `file` and `overrides` only make the
    replay commands) against `requirements` (default: the scenario's own), run by run, until each has a verdict
    at `confidence` that its probability of violation is below or above `bound`, or `max_runs` runs were made.
    Without an `executor` a process pool of `workers` (default: the core count) runs them. `progress` is called
    with the number of runs finished. Raises ScenarioError for a bad scenario, RequirementError when there is no
    requirement, ValueError for a bad bound, confidence or maximum."""
    scenario = load_scenario(document)
    judged = requirements_to_judge(scenario, requirements)
    plan = Plan(bound, confidence, max_runs)
    workers = workers or default_workers()
    text = json.dumps(document)
    tallies = [Tally() for _ in judged]
    done = 0
    with ExitStack() as stack:
        if executor is None:
            executor = stack.enter_context(ProcessPoolExecutor(workers, initializer=ignore_interrupts))
        for look in plan.looks:
            seeds = run_seeds(scenario.seed, look)
            calls = ((text, seed, judged) for seed in seeds[done:])
            checks: dict[int, Check] = {}
            with closing(completions(executor, check_run, calls, 2 * workers)) as runs:
                for index, check in runs:
                    checks[done + index] = check
                    if progress is not None:
                        progress(done + len(checks))
            for run in range(done, look):
                count_run(tallies, run, seeds[run], checks[run], file, overrides)
            done = look
            for tally in tallies:
                tally.look(plan, look)
            if all(t.decided for t in tallies):
                break
    judgements = tuple(
        Judgement(requirement, tally.decision, tally.first)
        for requirement, tally in zip(judged, tallies, strict=True)
        if tally.decision is not None  # every tally has one after the first look
    )
    return Verification(scenario.name, file, plan, done, judgements)


def count_run(
    tallies: list[Tally], run: int, seed: int, check: Check, file: str, overrides: Mapping[str, Any] | None
) -> None:
    """Add one run to the tallies of the requirements still undecided."""
    for tally, met, value in zip(tallies, check.met, check.values, strict=True):
        if tally.decided:
            continue
        if not met:
            tally.violations += 1
            if tally.first is None:
                tally.first = Violation(run, seed, value, check.error, reproduce_command(file, seed, overrides))
