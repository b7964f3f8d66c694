"""`mn-deploy deployment`: the operator's commands over the controller's gRPC API.

Each command is a function of a `Session` (the API client and the printer); `_command` gives it `--target`
and `--json` and turns every error into one line on stderr and a documented exit code, so no traceback
reaches the user. Views read everything from the API's JSON (deployment_view). The commands that wait (`watch`,
`deploy --wait`, `events --follow`) look at their deployment through a `Poll`, which rides out a failover.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import click

from mn_deploy.bundle_reader import BundleError, read_bundle
from mn_deploy.deployment_view import (
    CLI,
    HISTORY_COLUMNS,
    LIST_COLUMNS,
    UNSUCCESSFUL,
    action_fields,
    event_line,
    frame,
    history_rows,
    is_ended,
    list_rows,
    outcome,
    record_of,
    status_fields,
)
from mn_deploy.grpc_client import DEFAULT_TARGET, EXIT_CONTROLLER, EXIT_REFUSED, ApiError, DeploymentApi, Reply
from mn_deploy.output import Output
from mn_deploy.usage import FiniteFloatRange, OneLineUsage
from mn_deploy_core.status import Status
from mn_deploy_core.strategies import STRATEGIES

EXIT_UNSUCCESSFUL = 1
EXIT_INTERRUPTED = 130
STATUSES = tuple(member.value for member in Status)  # strings: click.Choice would show an enum's member names


@dataclass(frozen=True)
class Session:
    api: DeploymentApi
    out: Output


@click.group(name="deployment", cls=OneLineUsage, no_args_is_help=True)
def deployment() -> None:
    """Operate deployments on a controller through its gRPC API.

    \b
    Target:  --target, else MN_GRPC_TARGET, else 127.0.0.1:55051.
    Output:  Rich on a terminal; `Label: value` lines when piped or with
             MN_CLI_OUTPUT=plain (MN_CLI_OUTPUT=rich forces Rich);
             --json prints the API's JSON unchanged.

    \b
    Exit codes:
      0    done (watch, deploy --wait: the deployment succeeded)
      1    watch, deploy --wait: the deployment failed or was cancelled
      2    refused: bad usage or bundle, unknown id or key, or an action
           the deployment's status does not allow (the controller's message)
      3    the controller could not answer: unreachable (start one with
           `mn-deploy dev up`), too slow, or broken; while waiting, for
           longer than --grace
      130  interrupted (the deployment goes on)
    """


def _command(name: str) -> Callable[[Callable[..., None]], click.Command]:
    """Register a command whose function takes a Session first; the one place errors become exit codes."""

    def register(function: Callable[..., None]) -> click.Command:
        @functools.wraps(function)
        def run(target: str, as_json: bool, **arguments: Any) -> None:
            out = Output.detect(as_json)
            api = DeploymentApi(target)
            try:
                function(Session(api, out), **arguments)
            except ApiError as error:
                _exit(out, error.message, error.exit_code)
            except BundleError as error:
                _exit(out, error.message, EXIT_REFUSED)
            except KeyboardInterrupt:
                _exit(out, "interrupted; the deployment goes on", EXIT_INTERRUPTED)
            finally:
                api.close()

        click.option("--json", "as_json", is_flag=True, help="Print the API's JSON unchanged, a document a line.")(run)
        click.option(
            "--target",
            envvar="MN_GRPC_TARGET",
            default=DEFAULT_TARGET,
            show_default=True,
            help="The controller's gRPC address [env: MN_GRPC_TARGET].",
        )(run)
        return deployment.command(name)(run)

    return register


def _exit(out: Output, message: str, code: int) -> NoReturn:
    out.error(message)
    raise click.exceptions.Exit(code)


_interval = click.option(
    "--interval",
    type=FiniteFloatRange(min=0.01),
    default=1.0,
    show_default=True,
    help="Seconds between two looks at the deployment.",
)


_grace = click.option(
    "--grace",
    type=FiniteFloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds to keep looking while the controller does not answer, as in a failover (0: give up at once).",
)

# A look at a deployment is answered in milliseconds. One that takes longer counts as unanswered: a paused leader
# accepts connections but answers nothing until it has noticed that it lost its lease.
LOOK_TIMEOUT_S = 5.0
# While the controller does not answer, look at least this often: a new leader should be seen as soon as it serves.
RETRY_S = 1.0


@dataclass(frozen=True)
class Poll:
    """How a waiting command looks at its deployment: every `interval_s`, riding out a controller that does not
    answer (UNAVAILABLE, DEADLINE_EXCEEDED) for up to `grace_s`, as while a standby takes over (3-7 s). Only looks
    are retried, never a deploy or an action: one that was not answered may have been applied."""

    session: Session
    interval_s: float
    grace_s: float

    def again(self, deployment_id: str) -> Reply:
        """The deployment one interval later."""
        time.sleep(self.interval_s)
        return self.look(deployment_id)

    def look(self, deployment_id: str) -> Reply:
        """The deployment now, or once the controller answers again; past the grace period, ApiError (exit 3)."""
        give_up_at: float | None = None
        while True:
            began = time.monotonic()
            try:
                return self.session.api.get(deployment_id, timeout_s=self._timeout(give_up_at, began))
            except ApiError as error:
                give_up_at = self._outage(error, give_up_at, began, deployment_id)
            time.sleep(max(0.0, min(self.interval_s, RETRY_S, give_up_at - time.monotonic())))

    @staticmethod
    def _timeout(give_up_at: float | None, now: float) -> float:
        """A look does not outlast the grace period by much (at least 0.1 s, so it can still be answered)."""
        return LOOK_TIMEOUT_S if give_up_at is None else min(LOOK_TIMEOUT_S, max(give_up_at - now, 0.1))

    def _outage(self, error: ApiError, give_up_at: float | None, began: float, deployment_id: str) -> float:
        """When to give up on the outage `error` is part of (it started when the first unanswered look did);
        raises what is not an outage, and the outage once it has lasted the grace period. Said once an outage."""
        if not error.transient or self.grace_s <= 0:
            raise error
        target = self.session.api.target
        if give_up_at is None:
            give_up_at = began + self.grace_s
            self.session.out.warning(f"controller at {target} unavailable, retrying for up to {self.grace_s:g} s")
        if time.monotonic() >= give_up_at:
            gave_up = f"controller at {target} still unavailable after {self.grace_s:g} s; stopped waiting"
            goes_on = f"the deployment goes on: `{CLI} watch {deployment_id}` follows it again"
            raise ApiError(f"{gave_up} ({goes_on})", EXIT_CONTROLLER) from None
        return give_up_at


def _now_ms() -> float:
    """The controller's clock is ms since the epoch, so the progress deadline counts down on this one."""
    return time.time() * 1000.0


# ---- deploy ------------------------------------------------------------------------------------


def update_policy_json(policy: Mapping[str, Any]) -> str:
    """Only the flags given override the manifest's `policies.update`; none given sends nothing."""
    given = {name: value for name, value in policy.items() if value is not None}
    return json.dumps(given) if given else ""


@_command("deploy")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--key", default="", help="Deployment key; default: the manifest's.")
@click.option("--strategy", type=click.Choice(STRATEGIES), help="How changed agents are replaced.")
@click.option("--canary", type=click.IntRange(min=0), help="Agents tried beside the old ones first.")
@click.option("--max-parallel", type=click.IntRange(min=0), help="Agents replaced at once.")
@click.option("--auto-promote/--no-auto-promote", default=None, help="Promote once the canaries are healthy.")
@click.option("--auto-revert/--no-auto-revert", default=None, help="Redeploy the last stable version on failure.")
@click.option("--min-healthy-ms", type=click.IntRange(min=0), help="How long an instance stays healthy to count.")
@click.option("--healthy-deadline-ms", type=click.IntRange(min=1), help="How long an instance has to turn healthy.")
@click.option("--progress-deadline-ms", type=click.IntRange(min=0), help="How long a rollout may go without progress.")
@click.option("--wait", is_flag=True, help="Then watch it until it ends (exit 1 when it fails).")
@_interval
@_grace
def deploy(session: Session, bundle: Path, key: str, wait: bool, interval: float, grace: float, **policy: Any) -> None:
    """Deploy BUNDLE: a directory with manifest.json and payloads/, or a manifest file with payloads/ beside it.

    Only the policy flags given override the manifest's policies.update. The deploy itself is sent once: with
    --wait, only the watching rides out a failover.
    """
    source = read_bundle(bundle)
    reply = session.api.deploy(source.manifest_json, source.payloads, key, update_policy_json(policy))
    session.out.show_fields(reply.text, "Deployed", action_fields(reply.data, [("Bundle", str(bundle))]))
    if wait:
        poll = Poll(session, interval, grace)
        _watch(session, poll.look(str(record_of(reply.data)["deployment_id"])), poll)


# ---- reading -----------------------------------------------------------------------------------


@_command("list")
@click.option("--key", help="Only this deployment key.")
@click.option("--status", type=click.Choice(STATUSES), help="Only this status.")
def list_deployments(session: Session, key: str | None, status: str | None) -> None:
    """List deployments, every record of every key."""
    reply = session.api.list(key, status)
    session.out.show_table(reply.text, "Deployment", LIST_COLUMNS, list_rows(reply.data.get("data", [])))


@_command("status")
@click.argument("id_or_key")
def status(session: Session, id_or_key: str) -> None:
    """Where a deployment stands, how far it got, what happened last and the next command that makes sense."""
    reply = session.api.get(id_or_key)
    session.out.show_fields(reply.text, "Deployment status", status_fields(reply.data, _now_ms()))


@_command("history")
@click.argument("key")
def history(session: Session, key: str) -> None:
    """Every version of a key: stable or not, who made it, and why it was rolled back to."""
    reply = session.api.get(key)
    session.out.show_table(reply.text, "Version", HISTORY_COLUMNS, history_rows(reply.data.get("versions", [])))


@_command("events")
@click.argument("id_or_key")
@click.option("--follow", is_flag=True, help="Then print new events as they come, until the deployment ends.")
@_interval
@_grace
def events(session: Session, id_or_key: str, follow: bool, interval: float, grace: float) -> None:
    """A deployment's events (its record keeps the last 100); `--json` prints one event a line."""
    reply = session.api.get(id_or_key)
    last = _print_events(session.out, reply.data.get("events", []), None)
    poll = Poll(session, interval, grace)
    while follow and not is_ended(reply.data):
        reply = poll.again(str(reply.data["deployment_id"]))
        last = _print_events(session.out, reply.data.get("events", []), last)


def _print_events(out: Output, events: list[dict[str, Any]], last: dict[str, Any] | None) -> dict[str, Any] | None:
    """Print the events after `last` (all when it fell out of the kept window); answer the newest."""
    start = next((i + 1 for i in range(len(events) - 1, -1, -1) if events[i] == last), 0)
    fresh = events[start:]
    out.show_lines([json.dumps(e) for e in fresh], "Event", [event_line(e) for e in fresh])
    return events[-1] if events else last


@_command("watch")
@click.argument("id_or_key")
@_interval
@_grace
def watch(session: Session, id_or_key: str, interval: float, grace: float) -> None:
    """Follow a deployment until it ends: exit 0 when successful, 1 when failed or cancelled.

    `--json` prints the final record.
    """
    _watch(session, session.api.get(id_or_key), Poll(session, interval, grace))


def _watch(session: Session, first: Reply, poll: Poll) -> None:
    """From the `first` look on. A key is resolved once, by that look: a newer deployment of the key (an
    auto-revert) is watched by a new command."""
    reply = first
    with session.out.watching() as show:
        show(frame(reply.data, _now_ms()))
        while not is_ended(reply.data):
            reply = poll.again(str(reply.data["deployment_id"]))
            show(frame(reply.data, _now_ms()))
    session.out.show_outcome(reply.text, outcome(reply.data))
    if reply.data.get("status") in UNSUCCESSFUL:
        raise click.exceptions.Exit(EXIT_UNSUCCESSFUL)


# ---- operator actions --------------------------------------------------------------------------


def _confirm(session: Session, title: str, reply: Reply) -> None:
    session.out.show_fields(reply.text, title, action_fields(reply.data))


@_command("promote")
@click.argument("id_or_key")
def promote(session: Session, id_or_key: str) -> None:
    """Promote a deployment awaiting promotion: canaries or candidates become primary, the rest rolls."""
    _confirm(session, "Promoted", session.api.promote(id_or_key))


@_command("rollback")
@click.argument("id_or_key")
@click.option("--version", default="", help="Version to go back to; default: the last stable one not current.")
@click.option("--reason", default="", help="Recorded with the rollback.")
def rollback(session: Session, id_or_key: str, version: str, reason: str) -> None:
    """Deploy a previous version again, as a new version with that version's manifest and policy."""
    _confirm(session, "Rolled back", session.api.rollback(id_or_key, version, reason))


def _operator_action(verb: str, title: str, call: Callable[[DeploymentApi, str, str], Reply], summary: str) -> None:
    def action(session: Session, id_or_key: str, reason: str) -> None:
        _confirm(session, title, call(session.api, id_or_key, reason))

    action.__doc__ = summary
    reason = click.option("--reason", default="", help="Recorded in the event; default: the controller's text.")
    _command(verb)(click.argument("id_or_key")(reason(action)))


_operator_action("pause", "Paused", DeploymentApi.pause, "Stop placing instances; health tracking goes on.")
_operator_action("resume", "Resumed", DeploymentApi.resume, "Go back to the status before the pause.")
_operator_action("fail", "Failed", DeploymentApi.fail, "Mark an active deployment failed (auto-revert applies).")
