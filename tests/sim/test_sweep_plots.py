"""Sweep plots, checked through their artists (headless, no pixels compared)."""

from __future__ import annotations

from collections.abc import Iterator

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.container import BarContainer

from sim import SweepResult, read_sweep
from sim.plots import duration_cdf, heatmap, outcome_shares
from tests.sim.test_sweep import MAX_PARALLEL, START_FAILURE, on_threads, write_sweep


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> SweepResult:
    """2 x 2 points (max_parallel x start_failure), 8 runs each."""
    return on_threads(read_sweep(write_sweep(tmp_path_factory.mktemp("sweep"), runs=8)))


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    plt.close("all")


def test_heatmap_of_a_metric_puts_each_point_mean_in_its_cell(swept: SweepResult) -> None:
    ax = heatmap(swept, "max_parallel", START_FAILURE, metric="duration_ms")
    image = ax.images[0].get_array()
    means = [s.metrics["duration_ms"].mean for s in swept.summary]
    # rows are start_failure (0.0, 0.5), columns max_parallel (1, 2); points run max_parallel-major
    assert np.allclose(image, [[means[0], means[2]], [means[1], means[3]]])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0.0", "0.5"]
    assert len(ax.texts) == 4 and ax.get_title() == "sweep: mean duration_ms"


def test_heatmap_of_an_outcome_share(swept: SweepResult) -> None:
    ax = heatmap(swept, MAX_PARALLEL, "start_failure", outcome="successful")
    shares = [s.outcomes["successful"].share for s in swept.summary]
    assert np.allclose(ax.images[0].get_array(), [[shares[0], shares[2]], [shares[1], shares[3]]])
    assert shares[0] == shares[2] == 1.0


def test_heatmap_names_what_it_cannot_draw(swept: SweepResult) -> None:
    with pytest.raises(ValueError, match="exactly one of metric= or outcome="):
        heatmap(swept, "max_parallel", "start_failure")
    with pytest.raises(ValueError, match="no grid axis 'canary'"):
        heatmap(swept, "canary", "start_failure", metric="duration_ms")
    with pytest.raises(ValueError, match="no run had the outcome 'cancelled'"):
        heatmap(swept, "max_parallel", "start_failure", outcome="cancelled")
    with pytest.raises(ValueError, match="several points fall in one cell"):
        heatmap(swept, "max_parallel", "max_parallel", metric="duration_ms")


def test_heatmap_where_fixes_other_axes(swept: SweepResult) -> None:
    ax = heatmap(swept, "max_parallel", "max_parallel", metric="duration_ms", where={"start_failure": 0.5})
    image = ax.images[0].get_array()
    assert np.ma.getmaskarray(image).tolist() == [[False, True], [True, False]]  # NaN cells: no point there
    assert image[1, 1] == swept.summary[3].metrics["duration_ms"].mean


def test_duration_cdf_steps_to_the_share_of_runs_that_ended(swept: SweepResult) -> None:
    ax = duration_cdf(swept)
    assert [line.get_label() for line in ax.lines] == [swept.sweep.label(p) for p in swept.sweep.points]
    for line, summary in zip(ax.lines, swept.summary, strict=True):
        ended = summary.metrics["duration_ms"].n
        assert len(line.get_xdata()) == ended + 1
        assert line.get_ydata()[-1] == pytest.approx(ended / summary.runs)
        assert list(line.get_xdata()) == sorted(line.get_xdata())


def test_outcome_shares_stack_a_bar_per_point(swept: SweepResult) -> None:
    ax = outcome_shares(swept)
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    outcomes = list(swept.summary[0].outcomes)
    assert [c.get_label() for c in bars] == outcomes
    assert all(len(c) == 4 for c in bars)
    totals = np.sum([[patch.get_width() for patch in c] for c in bars], axis=0)
    assert np.allclose(totals, 1.0)
    assert [t.get_text() for t in ax.get_yticklabels()] == [swept.sweep.label(p) for p in swept.sweep.points]
