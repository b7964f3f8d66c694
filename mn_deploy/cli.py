"""`mn-deploy`: the command line. Each command group lives in its own module and is attached here."""

from __future__ import annotations

import click

from mn_deploy.calibrate_cli import calibrate_command
from mn_deploy.extras import Deferred, ExtrasGroup
from mn_deploy.replay_cli import replay
from mn_deploy.sim_cli import sim
from mn_deploy.tune_cli import tune_command
from mn_deploy.verify_cli import verify_command

# The live groups import redis and grpc: named here, imported when used (mn_deploy/extras.py). A command for one
# of them is attached by its `module:attribute` in `attached`, not with add_command below.
LIVE = {
    "deployment": Deferred(
        "mn_deploy.deployment_cli:deployment",
        "Operate deployments on a controller through its gRPC API.",
        "live",
        attached=(
            "mn_deploy.logs_cli:logs",
            "mn_deploy.export_cli:export",
            "mn_deploy.export_cli:plot",
            "mn_deploy.plan_cli:plan",
        ),
    ),
    "agent": Deferred(
        "mn_deploy.agent_cli:agent", "Agent workers: the processes that run deployed instances on a node.", "live"
    ),
    "controller": Deferred("mn_deploy.live_cli:controller", "The controller daemon.", "live"),
    "dev": Deferred("mn_deploy.live_cli:dev", "A local stack for trying things out.", "live"),
    "service": Deferred(
        "mn_deploy.service_cli:service",
        "Look services up in discovery, as the controller and its workers keep it in Redis.",
        "live",
    ),
}


@click.group(cls=ExtrasGroup, deferred=LIVE, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mn-deploy")
def main() -> None:
    """Roll out MirrorNeuron-style deployments, for real or in simulation."""


main.add_command(sim)
sim.add_command(calibrate_command)
sim.add_command(verify_command)
sim.add_command(tune_command)
sim.add_command(replay)
