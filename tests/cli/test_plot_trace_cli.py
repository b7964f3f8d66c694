"""`mn-deploy deployment plot --trace FILE` on whatever a file may hold: a PNG, or one `error:` line and exit 2 with
nothing written, never a traceback (fuzzed with hypothesis: awkward JSON, and one subtree of a real trace replaced).
The Redis side of `export` and `plot` runs on a real stack in tests/e2e/test_export.py."""

from __future__ import annotations

import json
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mn_deploy.cli import main
from sim.scenario import Simulation, read_scenario
from tests.awkward import awkward_values, replaced, subtree_paths

SCENARIO = Path(__file__).resolve().parents[2] / "examples" / "scenarios" / "canary-manual-promote.json"


@cache
def a_trace() -> str:
    simulation = Simulation(read_scenario(SCENARIO), record=True)
    simulation.run()
    return json.dumps(simulation.trace())


TRACE_PATHS = subtree_paths(json.loads(a_trace()))[1:]  # the whole document: test_fuzz_awkward_json


def plotted(text: str) -> None:
    """Exit 0 with a PNG, or exit 2 with one `error:` line naming the file and no PNG."""
    with tempfile.TemporaryDirectory() as directory:
        trace, png = Path(directory) / "t.json", Path(directory) / "t.png"
        trace.write_text(text, encoding="utf-8", errors="surrogatepass")
        result = CliRunner().invoke(main, ["deployment", "plot", "--trace", str(trace), "--out", str(png)])
        assert result.exit_code in (0, 2), result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        if result.exit_code == 2:
            assert result.stderr.startswith(f"error: {trace}: ") and result.stderr.count("\n") == 1, result.stderr
            assert not png.exists()
        else:
            assert png.read_bytes()[:4] == b"\x89PNG"


def test_a_simulated_trace_is_drawn() -> None:
    plotted(a_trace())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=awkward_values)
def test_fuzz_awkward_json(document: Any) -> None:
    plotted(json.dumps(document, allow_nan=True))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(TRACE_PATHS), value=awkward_values)
def test_fuzz_one_change_to_a_real_trace(path: tuple[Any, ...], value: Any) -> None:
    plotted(json.dumps(replaced(json.loads(a_trace()), path, value), allow_nan=True))


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        (("instances", 0, "life"), "x", "$.instances[0].life: must be an instance record or null"),
        (("instances", 0, "life", "placed_ms"), "x", "$.instances[0].life.placed_ms: must be a finite number"),
        (("instances", 0, "life", "healthy_ms"), "soon", "$.instances[0].life.healthy_ms: must be a finite"),
        (("deployments", 0, "events"), "x", "$.deployments[0].events: must be a list of objects"),
        (("deployments", 0, "events", 0, "t_ms"), None, "$.deployments[0].events[0].t_ms: must be a finite"),
        (("versions", 0), {"x": 1}, "$.versions[0]: must have a key, a version and a manifest name"),
    ],
)
def test_a_malformed_part_a_plot_reads_is_named(path: tuple[Any, ...], value: Any, problem: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        trace = Path(directory) / "t.json"
        trace.write_text(json.dumps(replaced(json.loads(a_trace()), path, value)))
        result = CliRunner().invoke(main, ["deployment", "plot", "--trace", str(trace), "--out", f"{directory}/t.png"])
        assert result.exit_code == 2
        assert result.stderr.startswith(f"error: {trace}: {problem}")
        assert not Path(directory, "t.png").exists()
