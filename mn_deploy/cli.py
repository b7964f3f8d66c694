"""`mn-deploy`: the command line. Each command group lives in its own module and is attached here."""

from __future__ import annotations

import click

from mn_deploy.agent_cli import agent
from mn_deploy.calibrate_cli import calibrate_command
from mn_deploy.deployment_cli import deployment
from mn_deploy.export_cli import export, plot
from mn_deploy.live_cli import controller, dev
from mn_deploy.logs_cli import logs
from mn_deploy.plan_cli import plan
from mn_deploy.replay_cli import replay
from mn_deploy.service_cli import service
from mn_deploy.sim_cli import sim
from mn_deploy.verify_cli import verify_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mn-deploy")
def main() -> None:
    """Roll out MirrorNeuron-style deployments, for real or in simulation."""


main.add_command(sim)
sim.add_command(calibrate_command)
sim.add_command(verify_command)
sim.add_command(replay)
main.add_command(deployment)
deployment.add_command(logs)
deployment.add_command(export)
deployment.add_command(plot)
deployment.add_command(plan)
main.add_command(agent)
main.add_command(controller)
main.add_command(dev)
main.add_command(service)
