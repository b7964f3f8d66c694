"""Per grid point: the mean and 95% interval of each numeric measure and the share of each outcome.

A mean is over the runs that have the value (a run that raised, or a rollout still active at the end, has no
`duration_ms`); a share is over all the point's runs, errors included, and every outcome seen anywhere in
the sweep is listed for every point, zero or not, so points compare side by side. A mean's interval is a
percentile bootstrap (sim.stats): it needs no normal approximation, so a measure that is mostly zero with a
few large values (`exposure_ms`) gets an interval within its range, never below zero; and it depends on the
values alone, not on the order in which workers finished the runs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sim.rows import ERROR, Row
from sim.stats import Estimate, Share, mean_interval, wilson_interval


@dataclass(frozen=True, slots=True)
class PointSummary:
    point: int
    params: Mapping[str, Any]
    runs: int
    errors: int
    metrics: dict[str, Estimate]
    outcomes: dict[str, Share]


def summarize(params: Sequence[Mapping[str, Any]], rows: Sequence[Row], metrics: Sequence[str]) -> list[PointSummary]:
    """One summary per point (`params[k]` are point k's grid values) from its rows, in any order."""
    by_point: list[list[Row]] = [[] for _ in params]
    for row in rows:
        by_point[row["point"]].append(row)
    outcomes = sorted({row["outcome"] for row in rows})
    summaries = []
    for point, point_rows in enumerate(by_point):
        counts = Counter(row["outcome"] for row in point_rows)
        n = len(point_rows)
        summaries.append(
            PointSummary(
                point=point,
                params=params[point],
                runs=n,
                errors=counts[ERROR],
                metrics={
                    name: mean_interval([row[name] for row in point_rows if row[name] is not None]) for name in metrics
                },
                outcomes={outcome: wilson_interval(counts[outcome], n) for outcome in outcomes},
            )
        )
    return summaries
