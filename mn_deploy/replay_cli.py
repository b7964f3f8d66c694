"""`mn-deploy sim replay TRACE`: re-run a recorded rollout in the simulator and say whether it decided the same.

Exit 0 when every decision came out the same, 1 at the first divergence, 2 for a file that is not a trace this
version can replay (one line naming the JSONPath). docs/traces.md ("Replay") says what is compared.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from mn_deploy.sim_cli import bad_input, warn_unknown_keys
from mn_deploy_core.trace import TraceError
from sim import Parity, ScenarioError, replay_trace
from sim.jsonfile import read_json
from sim.parity import Divergence


def _ms(value: float) -> str:
    """Milliseconds to the microsecond, without trailing zeros: `0`, `2500`, `0.004`."""
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _decision(value: object) -> str:
    return "nothing" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _divergence_lines(divergence: Divergence) -> list[str]:
    where = f"deployment {divergence.deployment}" if divergence.deployment else "the replay"
    if divergence.index is not None:
        where += f", decision {divergence.index}"
    return [
        f"parity: diverged at {_ms(divergence.t_ms)} ms in {where}",
        f"  why:      {divergence.reason}",
        f"  recorded: {_decision(divergence.recorded)}",
        f"  replayed: {_decision(divergence.replayed)}",
    ]


def parity_lines(parity: Parity) -> list[str]:
    """The verdict as a person reads it: one line when identical, the first divergence as a block otherwise."""
    if parity.divergence is None:
        return [f"parity: identical decisions ({parity.compared} compared), max time skew {_ms(parity.max_skew_ms)} ms"]
    same = f"  same:     {parity.compared} decisions, up to each deployment's first difference"
    return [*_divergence_lines(parity.divergence), same]


@click.command("replay")
@click.argument("trace", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--json", "as_json", is_flag=True, help="Print the parity (and the replay's result) as one JSON document."
)
def replay(trace: Path, as_json: bool) -> None:
    """Re-run the rollout recorded in TRACE (from `sim run --trace` or `deployment export`) in the simulator,
    with each instance's recorded facts and the recorded operator calls, and compare its decisions with the
    recorded ones, deployment by deployment, in order.

    Exit 0: identical decisions (the largest time difference is printed as the skew); 1: the first divergence
    is printed; 2: TRACE is not a trace this version can replay.
    """
    try:
        parity = replay_trace(read_json(trace))
    except (ScenarioError, TraceError) as error:
        bad_input(f"{trace}: {error}")
    warn_unknown_keys(str(trace), parity.warnings)
    if as_json:
        click.echo(json.dumps(parity.to_json(), ensure_ascii=False))
    else:
        for line in parity_lines(parity):
            click.echo(line)
    sys.exit(0 if parity.identical else 1)
