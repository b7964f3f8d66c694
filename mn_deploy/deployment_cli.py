"""`mn-deploy deployment`: the operator's commands over the controller's gRPC API.

Each command is a function of a `Session` (the API client and the printer); `_command` gives it `--target`
and `--json` and turns every error into one line on stderr and a documented exit code, so no traceback
reaches the user. Views read everything from the API's JSON (deployment_view). The commands that wait (`watch`,
`deploy --wait`, `events --follow`) look at their deployment through a `Poll`, which rides out a failover and
bounds the wait by `--timeout`.
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from backends.protocol.credentials import TLS_CA_ENV
from mn_deploy.bundle_reader import BundleError, read_bundle
from mn_deploy.deployment_view import (
    CLI,
    HISTORY_COLUMNS,
    INSTANCE_COLUMNS,
    LIST_COLUMNS,
    UNSUCCESSFUL,
    action_fields,
    event_line,
    frame,
    history_rows,
    instance_rows,
    instances_footer,
    is_ended,
    list_rows,
    outcome,
    record_of,
    status_fields,
)
from mn_deploy.grpc_client import (
    DEFAULT_TARGET,
    EXIT_CONTROLLER,
    EXIT_REFUSED,
    TIMEOUT_S,
    ApiError,
    Credentials,
    DeploymentApi,
    Reply,
)
from mn_deploy.output import Output
from mn_deploy.usage import FiniteFloatRange, OneLineUsage
from mn_deploy_core.status import TERMINAL, Status
from mn_deploy_core.strategies import STRATEGIES

EXIT_UNSUCCESSFUL = 1
EXIT_TIMED_OUT = 4
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
    Token:   MN_GRPC_AUTH_TOKEN, else the file MN_GRPC_AUTH_TOKEN_FILE
             names (as the official CLI); TLS: --tls-ca or MN_GRPC_TLS_CA.
    Output:  Rich on a terminal; `Label: value` lines when piped or with
             MN_CLI_OUTPUT=plain (MN_CLI_OUTPUT=rich forces Rich);
             --json prints the API's JSON unchanged.

    \b
    Exit codes:
      0    done (watch, deploy --wait: the deployment succeeded; watch
           --until: it reached a status asked for)
      1    watch, deploy --wait: the deployment failed or was cancelled
           (watch --until: it ended without reaching a status asked for)
      2    refused: bad usage or bundle, a missing or refused token, unknown
           id or key, or an action the deployment's status does not allow
           (the controller's message)
      3    the controller could not answer: unreachable (start one with
           `mn-deploy dev up`), too slow, or broken; while waiting, for
           longer than --grace
      4    watch, deploy --wait: timed out (--timeout); the deployment goes on
      130  interrupted (the deployment goes on)
    """


def _command(name: str) -> Callable[[Callable[..., None]], click.Command]:
    """Register a command whose function takes a Session first; the one place errors become exit codes."""

    def register(function: Callable[..., None]) -> click.Command:
        @functools.wraps(function)
        def run(target: str, tls_ca: Path | None, as_json: bool, **arguments: Any) -> None:
            out = Output.detect(as_json)
            try:
                api = DeploymentApi(target, credentials=Credentials.from_env(tls_ca))
            except ApiError as error:
                out.exit(error.message, error.exit_code)
            try:
                function(Session(api, out), **arguments)
            except ApiError as error:
                out.exit(error.message, error.exit_code)
            except BundleError as error:
                out.exit(error.message, EXIT_REFUSED)
            except TimedOut as error:
                out.exit(error.message, EXIT_TIMED_OUT)
            except KeyboardInterrupt:
                out.exit("interrupted; the deployment goes on", EXIT_INTERRUPTED)
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
        click.option(
            "--tls-ca",
            type=click.Path(dir_okay=False, path_type=Path),
            envvar=TLS_CA_ENV,
            help=f"Speak TLS, checking the controller's certificate against this CA (PEM) [env: {TLS_CA_ENV}].",
        )(run)
        return deployment.command(name)(run)

    return register


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

_timeout = click.option(
    "--timeout",
    type=FiniteFloatRange(min=0, min_open=True),
    help="Stop waiting after this many seconds (exit 4); default: wait as long as it takes.",
)


class StatusList(click.ParamType):
    """`STATUS[,STATUS...]`: deployment statuses, as a set of Status."""

    name = "STATUS[,STATUS...]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, frozenset):
            return value
        names = [name.strip() for name in str(value).split(",")]
        unknown = next((name for name in names if name not in STATUSES), None)
        if unknown is not None:
            self.fail(f"{unknown!r} is not a status; use one or more of {', '.join(STATUSES)}.", param, ctx)
        return frozenset(Status(name) for name in names)


class TimedOut(Exception):
    """A wait that outlasted `--timeout` (exit 4). `seen` is the status of the last look answered, if any."""

    def __init__(self, timeout_s: float, what: str, seen: str | None = None) -> None:
        super().__init__(what)
        self.timeout_s, self.what, self.seen = timeout_s, what, seen

    @property
    def message(self) -> str:
        waited = f"{self.timeout_s:g} s (--timeout)"
        if self.seen is None:
            gave_up = f"no answer about {self.what} within {waited}; stopped waiting"
        else:
            gave_up = f"deployment {self.what} still {self.seen} after {waited}; stopped waiting"
        return f"{gave_up} (the deployment goes on: `{CLI} watch {self.what}` follows it again)"


# Past the timeout, a failed look counts as timed out (not as an outage) even if it came this much early.
_TIMEOUT_SLACK_S = 0.01

# A look at a deployment is answered in milliseconds. One that takes longer counts as unanswered: a paused leader
# accepts connections but answers nothing until it has noticed that it lost its lease.
LOOK_TIMEOUT_S = 5.0
# While the controller does not answer, look at least this often: a new leader should be seen as soon as it serves.
RETRY_S = 1.0


@dataclass(frozen=True)
class Poll:
    """How a waiting command looks at its deployment: every `interval_s`, riding out a controller that does not
    answer (UNAVAILABLE, DEADLINE_EXCEEDED) for up to `grace_s`, as while a standby takes over (3-7 s). Only looks
    are retried, never a deploy or an action: one that was not answered may have been applied.

    With `timeout_s`, the whole wait (counted from the Poll's making) ends by then: no sleep and no look outlasts
    it by more than 0.1 s (a last look at the deadline), and then `TimedOut` (exit 4)."""

    session: Session
    interval_s: float
    grace_s: float
    timeout_s: float | None = None
    started_at: float = field(default_factory=time.monotonic)

    @property
    def ends_at(self) -> float:
        return math.inf if self.timeout_s is None else self.started_at + self.timeout_s

    def first(self, id_or_key: str) -> Reply:
        """The first look, not ridden out (a wrong --target is reported at once) but bounded by the timeout."""
        try:
            return self.session.api.get(id_or_key, timeout_s=min(TIMEOUT_S, self._left(time.monotonic())))
        except ApiError as error:
            self._check_timed_out(error, id_or_key)
            raise

    def again(self, deployment_id: str) -> Reply:
        """The deployment one interval later; TimedOut when the timeout comes first."""
        left = self.ends_at - time.monotonic()
        if left <= 0:
            raise self._timed_out(deployment_id)
        time.sleep(min(self.interval_s, left))
        return self.look(deployment_id)

    def look(self, deployment_id: str) -> Reply:
        """The deployment now, or once the controller answers again; past the grace period, ApiError (exit 3);
        past the timeout, TimedOut (exit 4)."""
        give_up_at: float | None = None
        while True:
            began = time.monotonic()
            try:
                return self.session.api.get(deployment_id, timeout_s=self._timeout(give_up_at, began))
            except ApiError as error:
                self._check_timed_out(error, deployment_id)
                give_up_at = self._outage(error, give_up_at, began, deployment_id)
            now = time.monotonic()
            time.sleep(max(0.0, min(self.interval_s, RETRY_S, give_up_at - now, self.ends_at - now)))

    def _left(self, now: float) -> float:
        """Time left to the timeout, at least 0.1 s: a last look at the deadline can still be answered."""
        return max(self.ends_at - now, 0.1)

    def _timeout(self, give_up_at: float | None, now: float) -> float:
        """A look does not outlast the grace period or the timeout by much (at least 0.1 s, so it can still be
        answered)."""
        grace = LOOK_TIMEOUT_S if give_up_at is None else min(LOOK_TIMEOUT_S, max(give_up_at - now, 0.1))
        return min(grace, self._left(now))

    def _check_timed_out(self, error: ApiError, what: str) -> None:
        """A look left unanswered until the timeout is the timeout, not an outage (nor its warning)."""
        if error.transient and time.monotonic() >= self.ends_at - _TIMEOUT_SLACK_S:
            raise self._timed_out(what) from None

    def _timed_out(self, what: str) -> TimedOut:
        assert self.timeout_s is not None
        return TimedOut(self.timeout_s, what)

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


_DEPLOY_OPTIONS = (
    click.argument("bundle", type=click.Path(path_type=Path)),
    click.option("--key", default="", help="Deployment key; default: the manifest's."),
    click.option("--strategy", type=click.Choice(STRATEGIES), help="How changed agents are replaced."),
    click.option("--canary", type=click.IntRange(min=0), help="Agents tried beside the old ones first."),
    click.option("--max-parallel", type=click.IntRange(min=0), help="Agents replaced at once."),
    click.option("--auto-promote/--no-auto-promote", default=None, help="Promote once the canaries are healthy."),
    click.option("--auto-revert/--no-auto-revert", default=None, help="Redeploy the last stable version on failure."),
    click.option("--min-healthy-ms", type=click.IntRange(min=0), help="How long an instance stays healthy to count."),
    click.option("--healthy-deadline-ms", type=click.IntRange(min=1), help="How long an instance has to turn healthy."),
    click.option(
        "--progress-deadline-ms", type=click.IntRange(min=0), help="How long a rollout may go without progress."
    ),
)


def deploy_options(function: Callable[..., None]) -> Callable[..., None]:
    """BUNDLE, --key and the policy flags, as `deploy` takes them; `deployment plan` takes the same ones. The policy
    flags arrive as keyword arguments named as the policy's fields (`update_policy_json` sends them)."""
    for option in reversed(_DEPLOY_OPTIONS):
        function = option(function)
    return function


@_command("deploy")
@deploy_options
@click.option("--wait", is_flag=True, help="Then watch it until it ends (exit 1 when it fails).")
@_interval
@_grace
@_timeout
def deploy(
    session: Session,
    bundle: Path,
    key: str,
    wait: bool,
    interval: float,
    grace: float,
    timeout: float | None,
    **policy: Any,
) -> None:
    """Deploy BUNDLE: a directory with manifest.json and payloads/, or a manifest file with payloads/ beside it.

    Only the policy flags given override the manifest's policies.update. The deploy itself is sent once: with
    --wait, only the watching rides out a failover; --timeout counts from the deploy's answer.
    """
    source = read_bundle(bundle)
    reply = session.api.deploy(source.manifest_json, source.payloads, key, update_policy_json(policy))
    session.out.show_fields(reply.text, "Deployed", action_fields(reply.data, [("Bundle", str(bundle))]))
    if wait:
        poll = Poll(session, interval, grace, timeout)
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
    """Where a deployment stands, how far it got, what happened last and the next command that makes sense,
    then its instances: agent, version, role, node, pid, port, state, restarts and since when."""
    reply = session.api.get(id_or_key)
    now_ms = _now_ms()
    session.out.show_fields(reply.text, "Deployment status", status_fields(reply.data, now_ms))
    rows = instance_rows(reply.data, now_ms)
    if rows and not session.out.as_json:  # the JSON above holds the rows
        session.out.show_table("", "Instance", INSTANCE_COLUMNS, rows, fold=("agent", "node"))
    session.out.show_lines([], "Instances", [instances_footer(reply.data)])


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
@click.option(
    "--until",
    type=StatusList(),
    help=f"Return once the status is one of these (exit 0); of: {', '.join(STATUSES)}. Default: the end.",
)
@_interval
@_grace
@_timeout
def watch(
    session: Session,
    id_or_key: str,
    until: frozenset[Status] | None,
    interval: float,
    grace: float,
    timeout: float | None,
) -> None:
    """Follow a deployment until it ends: exit 0 when successful, 1 when failed or cancelled.

    With --until, until its status is one of those given (exit 0), or it ends in another (exit 1). With
    --timeout, exit 4 once that many seconds have gone by. `--json` prints the final record.
    """
    poll = Poll(session, interval, grace, timeout)
    _watch(session, poll.first(id_or_key), poll, until)


def _watch(session: Session, first: Reply, poll: Poll, until: frozenset[Status] | None = None) -> None:
    """From the `first` look on, until the status is one of `until` or the deployment ends (by default, the end
    alone). A key is resolved once, by that look: a newer deployment of the key (an auto-revert) is watched by a
    new command. A status held for less than an interval may go unseen; an end never does."""
    reply = first
    with session.out.watching() as show:
        show(frame(reply.data, _now_ms()))
        try:
            while not is_ended(reply.data) and reply.data.get("status") not in (until or TERMINAL):
                reply = poll.again(str(reply.data["deployment_id"]))
                show(frame(reply.data, _now_ms()))
        except TimedOut as timed_out:
            raise TimedOut(timed_out.timeout_s, timed_out.what, str(reply.data.get("status"))) from None
    status = reply.data.get("status")
    line = outcome(reply.data)
    if until is None:
        reached = status not in UNSUCCESSFUL
    else:
        reached = status in until
        if not reached and status not in UNSUCCESSFUL:  # an unsuccessful end already says what to do next
            line += f"; ended without reaching {_names(until)}"
    session.out.show_outcome(reply.text, line)
    if not reached:
        raise click.exceptions.Exit(EXIT_UNSUCCESSFUL)


def _names(statuses: frozenset[Status]) -> str:
    return " or ".join(name for name in STATUSES if name in statuses)


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
