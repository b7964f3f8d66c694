"""The picture of a tuning: every candidate's measure against its requirement margin, so the winner is seen as the
lowest point right of the line, and what each other candidate lost to (a requirement, or a faster candidate).

Like sim/plots.py: `ax=None` draws a new figure, the Axes is returned, nothing is shown.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from sim.tuning import Candidate, Standing, Tuning

SIZE = (9.0, 5.5)
STYLE = {
    Standing.HOLDS: ("o", "tab:green"),
    Standing.VIOLATED: ("X", "tab:red"),
    Standing.OUTPACED: ("s", "tab:gray"),
    Standing.UNDECIDED: ("D", "tab:orange"),
}


def margin(tuning: Tuning, candidate: Candidate) -> float:
    """The bound minus the candidate's highest upper bound of a requirement's probability of violation: above 0
    every requirement is shown to hold; below, by how far it is not (yet)."""
    return tuning.plan.bound - candidate.violation_high


def candidates_figure(tuning: Tuning) -> Figure:
    """The candidates plot on a figure of its own, to save."""
    figure = plt.figure(figsize=SIZE, layout="constrained")
    candidates_plot(tuning, figure.subplots())
    return figure


def candidates_plot(tuning: Tuning, ax: Axes | None = None) -> Axes:
    """Mean measure (with its bootstrap interval) against the requirement margin, one point per candidate,
    marked by how it ended; the winner ringed. A candidate whose mean is infinite (a run without a value) sits
    on the top edge."""
    ax = ax if ax is not None else plt.figure(figsize=SIZE, layout="constrained").subplots()
    finite = [
        c.estimate.mean for c in tuning.candidates if c.estimate.mean is not None and math.isfinite(c.estimate.mean)
    ]
    top = max(finite, default=1.0) * 1.1
    winner = tuning.winner
    for standing, (marker, color) in STYLE.items():
        mine = [c for c in tuning.candidates if c.standing is standing]
        if not mine:
            continue
        xs = [margin(tuning, c) for c in mine]
        ys = [_y(c, top) for c in mine]
        low = [y - (c.estimate.low if c.estimate.low is not None else y) for c, y in zip(mine, ys, strict=True)]
        high = [(c.estimate.high if c.estimate.high is not None else y) - y for c, y in zip(mine, ys, strict=True)]
        ax.errorbar(
            xs, ys, yerr=[low, high], fmt=marker, color=color, capsize=3, label=f"{standing.value} ({len(mine)})"
        )
        for (x, y), labels in _labels_at(mine, xs, ys).items():
            ax.annotate("\n".join(labels), (x, y), textcoords="offset points", xytext=(6, 4), fontsize=7)
    if winner is not None:
        ax.scatter([margin(tuning, winner)], [_y(winner, top)], s=260, facecolors="none", edgecolors="black", zorder=3)
        ax.annotate("winner", (margin(tuning, winner), _y(winner, top)), textcoords="offset points", xytext=(-12, -18))
    ax.axvline(0.0, color="black", linestyle="--", linewidth=1)
    ax.set_xscale("symlog", linthresh=tuning.plan.bound)
    ax.set_xlabel(
        f"requirement margin: bound {tuning.plan.bound:g} minus the upper bound of P(violation), worst requirement "
        "(right of 0: holds)"
    )
    ax.set_ylabel(f"mean {tuning.minimize} (95% bootstrap interval)")
    ax.set_title(
        f"{tuning.scenario}: {len(tuning.candidates)} candidates, {tuning.runs} runs "
        f"({tuning.ratio:.0%} of an exhaustive sweep's {tuning.exhaustive_runs})"
    )
    ax.legend(loc="best", fontsize=8)
    return ax


def _y(candidate: Candidate, top: float) -> float:
    mean = candidate.estimate.mean
    return top if mean is None or not math.isfinite(mean) else mean


def _labels_at(candidates: list[Candidate], xs: list[float], ys: list[float]) -> dict[tuple[float, float], list[str]]:
    """The labels of candidates drawn at the same spot, together, so they do not print over each other."""
    spots: dict[tuple[float, float], list[str]] = {}
    for candidate, x, y in zip(candidates, xs, ys, strict=True):
        spots.setdefault((x, y), []).append(candidate.label)
    return spots
