"""Requirements over a run's measures (docs/verification.md): `MEASURE OP VALUE`, e.g. `max_bad_serving <= 2`.

A requirement is one comparison, so it reads the same in a scenario file, on a command line and in a report; a
typo in a measure's name or an outcome is an error naming it, never a requirement that silently always holds.
A run satisfies a requirement only when its measure has a value that compares as written: a missing value (a
rollout still running has no `duration_ms`) or a run that raised satisfies none.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mn_deploy_core.policy import display_value
from mn_deploy_core.status import Status
from sim.measures import MEASURES, NO_DEPLOYMENT, OUTCOME, REVERSION, REVERTED, measure, reversion
from sim.result import Result
from sim.rows import ERROR
from sim.schema import Problems, ScenarioError, child, list_of, text

NAMES = (*MEASURES, *REVERSION)
"""Every measure a requirement may name."""
OUTCOMES = (*(s.value for s in Status), REVERTED, NO_DEPLOYMENT, ERROR)
"""Every value `outcome` may have."""
MAX_LENGTH = 200
"""Far longer than any requirement; a longer text is refused before it is parsed."""
OPERATORS: Mapping[str, Callable[[Any, Any], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
    ">": operator.gt,
    "==": operator.eq,
    "!=": operator.ne,
}
_TEXT_OPERATORS = ("==", "!=")
_FORM = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|==|!=|<|>)\s*(\S+)\s*", re.ASCII)
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)


class RequirementError(ValueError):
    """A requirement that cannot be read; `message` is one line naming the problem."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Requirement:
    """`measure op value`; `value` is a float for a numeric measure, an outcome's name for `outcome`."""

    measure: str
    op: str
    value: float | str

    def __str__(self) -> str:
        value = self.value if isinstance(self.value, str) else f"{self.value:g}"
        return f"{self.measure} {self.op} {value}"

    def satisfied_by(self, measures: Mapping[str, Any]) -> bool:
        """Whether a run with these measures meets the requirement; a missing value never does."""
        value = measures.get(self.measure)
        return value is not None and OPERATORS[self.op](value, self.value)


def _quoted(text: str) -> str:
    """`text` cut short, in double quotes on one line, whatever it holds (line breaks, control characters)."""
    shown = text if len(text) <= 60 else text[:57] + "..."
    return '"' + display_value(shown).replace('"', '\\"') + '"'


def parse_requirement(text: str) -> Requirement:
    """Read `MEASURE OP VALUE`; raises RequirementError naming what is wrong."""
    if len(text) > MAX_LENGTH:
        raise RequirementError(f"requirement {_quoted(text)} is longer than {MAX_LENGTH} characters")
    form = _FORM.fullmatch(text)
    if form is None:
        raise RequirementError(
            f"requirement {_quoted(text)} must read MEASURE OP VALUE, with OP one of {' '.join(OPERATORS)}"
        )
    name, op, raw = form.groups()
    if name not in NAMES:
        raise RequirementError(f"requirement {_quoted(text)}: unknown measure {name!r} (one of {', '.join(NAMES)})")
    if name == OUTCOME:
        if op not in _TEXT_OPERATORS:
            raise RequirementError(f"requirement {_quoted(text)}: outcome compares with == or != only")
        if raw not in OUTCOMES:
            raise RequirementError(
                f"requirement {_quoted(text)}: unknown outcome {_quoted(raw)} (one of {', '.join(OUTCOMES)})"
            )
        return Requirement(name, op, raw)
    if _NUMBER.fullmatch(raw) is None or not math.isfinite(float(raw)):
        raise RequirementError(f"requirement {_quoted(text)}: {name} compares with a finite number, not {_quoted(raw)}")
    return Requirement(name, op, float(raw))


def measures_of(result: Result) -> dict[str, Any]:
    """Every measure a requirement may name, of one run."""
    return {**measure(result), **reversion(result)}


def _requirement(value: Any, path: str) -> Requirement:
    try:
        return parse_requirement(text(value, path))
    except RequirementError as error:
        raise ScenarioError(path, error.message) from None


def requirements_at(value: Any, path: str) -> tuple[Requirement, ...]:
    """A scenario's `requirements`: a list of requirement texts; raises ScenarioError naming every bad one."""
    problems = Problems()
    requirements = [problems.check(_requirement, raw, child(path, i)) for i, raw in enumerate(list_of(value, path))]
    problems.raise_any()
    return tuple(r for r in requirements if r is not None)
