"""Sweep plots, checked through their artists (headless, no pixels compared)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from click.testing import CliRunner
from click.testing import Result as ClickResult
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from matplotlib.container import BarContainer
from matplotlib.figure import Figure

from mn_deploy.cli import main
from sim import SweepResult, read_sweep
from sim.plots import duration_cdf, heatmap, outcome_shares, sweep_figure
from tests.sim.test_sweep import MAX_PARALLEL, START_FAILURE, on_threads, write_sweep


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> SweepResult:
    """2 x 2 points (max_parallel x start_failure), 8 runs each."""
    return on_threads(read_sweep(write_sweep(tmp_path_factory.mktemp("sweep"), runs=8)))


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    plt.close("all")


def test_heatmap_of_a_metric_puts_each_point_mean_in_seconds_in_its_cell(swept: SweepResult) -> None:
    ax = heatmap(swept, "max_parallel", START_FAILURE, metric="duration_ms")
    image = ax.images[0].get_array()
    means = [s.metrics["duration_ms"].mean / 1000 for s in swept.summary]
    # rows are start_failure (0.0, 0.5), columns max_parallel (1, 2); points run max_parallel-major
    assert np.allclose(image, [[means[0], means[2]], [means[1], means[3]]])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0.0", "0.5"]
    assert len(ax.texts) == 4 and ax.get_title() == "sweep: mean duration_ms (95% interval below)"


def test_heatmap_cells_show_the_mean_with_its_unit_and_interval(swept: SweepResult) -> None:
    ax = heatmap(swept, "max_parallel", START_FAILURE, metric="duration_ms")
    estimate = swept.summary[0].metrics["duration_ms"]  # max_parallel 1, start_failure 0.0: row 0, column 0
    cell = next(t for t in ax.texts if t.get_position() == (0, 0))
    mean, low, high = (f"{v / 1000:#.3g}" for v in (estimate.mean, estimate.low, estimate.high))
    assert cell.get_text() == f"{mean} s\n[{low}, {high}]"


def test_heatmap_colour_bar_is_attached_to_its_axes_and_names_the_unit(swept: SweepResult) -> None:
    figure = Figure(figsize=(12, 9), layout="constrained")
    wide, ax = figure.subplots(2, 1)
    outcome_shares(swept, wide)  # a legend outside on the right, as in `sim sweep --plot`
    heatmap(swept, "max_parallel", START_FAILURE, metric="exposure_ms", ax=ax)
    figure.canvas.draw()
    (bar,) = ax.child_axes
    assert bar.get_ylabel() == "mean exposure (s)"
    gap = bar.get_position().x0 - ax.get_position().x1
    assert 0 < gap < 0.03 * ax.get_position().width  # beside the heatmap, not at the figure's edge
    assert bar.get_position().y0 == pytest.approx(ax.get_position().y0)


def test_a_count_metric_keeps_its_unit_and_an_outcome_share_says_so(swept: SweepResult) -> None:
    ax = heatmap(swept, "max_parallel", START_FAILURE, metric="min_serving")
    assert ax.child_axes[0].get_ylabel() == "mean min_serving"
    assert not any(" s\n" in t.get_text() for t in ax.texts)
    ax = heatmap(swept, "max_parallel", START_FAILURE, outcome="successful")
    assert ax.child_axes[0].get_ylabel() == "share of runs successful"
    share = swept.summary[0].outcomes["successful"]
    cell = next(t for t in ax.texts if t.get_position() == (0, 0))
    assert cell.get_text() == f"{share.share:#.3g}\n[{share.low:#.3g}, {share.high:#.3g}]"


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
    assert image[1, 1] == swept.summary[3].metrics["duration_ms"].mean / 1000


def test_duration_cdf_steps_to_the_share_of_runs_that_ended(swept: SweepResult) -> None:
    ax = duration_cdf(swept)
    assert [line.get_label() for line in ax.lines] == [swept.sweep.label(p) for p in swept.sweep.points]
    for line, summary in zip(ax.lines, swept.summary, strict=True):
        ended = summary.metrics["duration_ms"].n
        assert len(line.get_xdata()) == ended + 1
        assert line.get_ydata()[-1] == pytest.approx(ended / summary.runs)
        assert list(line.get_xdata()) == sorted(line.get_xdata())
    longest = max(row["duration_ms"] for row in swept.rows if row["duration_ms"] is not None)
    assert max(max(line.get_xdata()) for line in ax.lines) == pytest.approx(longest / 1000)  # s, as the heatmap
    assert ax.get_xlabel() == "rollout duration (s)"


def test_outcome_shares_stack_a_bar_per_point(swept: SweepResult) -> None:
    ax = outcome_shares(swept)
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    outcomes = list(swept.summary[0].outcomes)
    assert [c.get_label() for c in bars] == outcomes
    assert all(len(c) == 4 for c in bars)
    totals = np.sum([[patch.get_width() for patch in c] for c in bars], axis=0)
    assert np.allclose(totals, 1.0)
    assert [t.get_text() for t in ax.get_yticklabels()] == [swept.sweep.label(p) for p in swept.sweep.points]


def test_the_sweep_figure_draws_the_chosen_metric_or_the_first_listed(swept: SweepResult) -> None:
    def heatmap_of(figure: Figure) -> str:
        return figure.axes[-1].child_axes[0].get_ylabel()

    assert heatmap_of(sweep_figure(swept)) == "mean duration (s)"  # the file lists duration_ms first
    assert heatmap_of(sweep_figure(swept, metric="exposure_ms")) == "mean exposure (s)"
    assert sweep_figure(swept).axes[1].get_xlabel() == "rollout duration (s)"


def test_sim_sweep_metric_chooses_the_heatmap_and_is_refused_where_there_is_none(tmp_path: Path) -> None:
    path = write_sweep(tmp_path, runs=2)
    plot = tmp_path / "sweep.png"

    def sweep(*options: str) -> ClickResult:
        return CliRunner().invoke(main, ["sim", "sweep", str(path), "--workers", "1", *options])

    done = sweep("--metric", "min_serving", "--plot", str(plot))
    assert done.exit_code == 0, done.output
    assert plot.read_bytes().startswith(b"\x89PNG")
    plot.unlink()
    for options, message in [
        (["--metric", "end_ms", "--plot", str(plot)], "--metric end_ms: sweep sweep keeps only duration_ms, "),
        (["--metric", "min_serving"], "--metric min_serving: it chooses what the heatmap of --plot shows"),
    ]:
        refused = sweep(*options)
        assert refused.exit_code == 2 and refused.stdout == ""
        assert refused.stderr.startswith(f"error: {message}") and refused.stderr.count("\n") == 1
        assert not plot.exists()
    one_axis = write_sweep(tmp_path, runs=2, grid={MAX_PARALLEL: [1, 2]})
    refused = CliRunner().invoke(main, ["sim", "sweep", str(one_axis), "--metric", "min_serving", "--plot", str(plot)])
    assert refused.exit_code == 2 and "has 1 grid axes; a heatmap needs two" in refused.stderr


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.text(st.characters(blacklist_characters="\x00"), min_size=1, max_size=2000).filter(
        lambda name: name not in ("duration_ms", "min_serving", "exposure_ms")  # what the sweep keeps
    )
)
def test_fuzz_an_unknown_metric_is_refused_in_one_line(tmp_path: Path, name: str) -> None:
    """Huge, with line breaks, escape sequences or lone surrogates: one line, exit 2, nothing written."""
    path, plot = write_sweep(tmp_path, runs=1), tmp_path / "plot.png"
    refused = CliRunner().invoke(main, ["sim", "sweep", str(path), "--metric", name, "--plot", str(plot)])
    assert (refused.exit_code, refused.stdout) == (2, "")
    assert refused.stderr.startswith("error: --metric ") and refused.stderr.count("\n") == 1
    assert not plot.exists()
