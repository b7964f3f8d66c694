"""What a simulation loads: scipy's statistics cost some 75 MB and half a second, so only calibration and
predictions load them (`sim.scipy_stats`); a run, a sweep and the `sim run` command never do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "examples" / "scenarios" / "canary-manual-promote.json"
SWEEP = ROOT / "examples" / "sweeps" / "max-parallel-x-start-failure.json"


def modules_after(code: str) -> set[str]:
    """The top-level packages loaded once `code` ran in a fresh interpreter (its output's last line)."""
    report = "import sys; print(' '.join(sorted({name.split('.')[0] for name in sys.modules})))"
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\n{report}"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(done.stdout.splitlines()[-1].split())


def test_a_run_and_a_sweep_load_no_scipy() -> None:
    loaded = modules_after(
        "import sim\n"
        f"sim.run_scenario(sim.read_scenario({str(SCENARIO)!r}))\n"
        f"sweep = sim.read_sweep({str(SWEEP)!r})\n"
        "sim.run_sweep(sweep, workers=1)\n"
    )
    assert "sim" in loaded and "scipy" not in loaded


def test_the_sim_run_command_loads_no_scipy() -> None:
    loaded = modules_after(
        f"from mn_deploy.cli import main\nmain(['sim', 'run', {str(SCENARIO)!r}], standalone_mode=False)\n"
    )
    assert "mn_deploy" in loaded and "scipy" not in loaded


def test_calibration_loads_scipy_when_it_needs_it() -> None:
    loaded = modules_after("from sim.fitting import clopper_pearson\nclopper_pearson(3, 10)\n")
    assert "scipy" in loaded
