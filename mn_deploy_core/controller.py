"""The public API of the core (R3, R4, R10, R11): every call takes `now` and returns at once.

Operator calls (`deploy`, `promote`, `rollback`, `pause`, `resume`, `fail`) and driver calls (`observe`, `tick`)
decide, then apply what they decided in one loop: a rollout's effects go out through the Runtime and Registry
ports, then into the one timer queue, and every record the call touched is handed to the Store in one batch
at its end (`Store.commit`), so a store can commit a whole decision at once.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from typing import Any

from mn_deploy_core.actuator import Actuator
from mn_deploy_core.effects import Effect, Fail, Finish, Place, Promote, Stop, Wake
from mn_deploy_core.errors import NotFoundError, RefusedError, UndeployableVersionError
from mn_deploy_core.fleet import Fleet, Instance
from mn_deploy_core.health import HealthTracker, Verdict
from mn_deploy_core.limits import check_text
from mn_deploy_core.manifest import Manifest, load_manifest
from mn_deploy_core.ports import Commit, Fact, FactKind, Recorder, Registry, Runtime, Store
from mn_deploy_core.reconcile import Reconciler
from mn_deploy_core.records import DeploymentRecord, InstanceRecord, VersionRecord
from mn_deploy_core.rollout import Journal, Rollout
from mn_deploy_core.routing import Router, manifest_of, same_target
from mn_deploy_core.status import CANCELLED, FAILED_BY_OPERATOR, FAILED_DEADLINE, Trigger, transition
from mn_deploy_core.takeover import restore
from mn_deploy_core.timers import Kind, Timers
from mn_deploy_core.trace import action_entry, fact_entry, manifest_name
from mn_deploy_core.versions import revert_decision, rollback_target, undeployable_suffix


class Controller:
    """Decides every rollout of every key; one per world."""

    def __init__(self, store: Store, runtime: Runtime, registry: Registry, recorder: Recorder | None = None) -> None:
        """`recorder`: where the inputs of every decision go, for a trace (none: they are not kept)."""
        self._store = store
        self._recorder = recorder
        self._timers = Timers(self._live)
        self._health = HealthTracker(self._timers)
        self._actuator = Actuator(runtime, registry, Fleet(), self._health)
        self._active: dict[str, Rollout] = {}
        self._active_by_key: dict[str, Rollout] = {}
        self._touched: dict[str, Journal] = {}
        self._router = Router(store, self._actuator, self._touched)
        self._reconciler = Reconciler(store, self._actuator, self._journal)

    # ---- operator API ------------------------------------------------------------------------

    def deploy(
        self,
        manifest: Mapping[str, Any],
        overrides: Mapping[str, Any] | None = None,
        key: str | None = None,
        bundle: str | None = None,
        *,
        now: float,
    ) -> DeploymentRecord:
        """Validate, then route (R3): initial, rerun, noop, blue-green or agent-level.

        `bundle` fingerprints the payloads shipped with the manifest; it is kept with the version so a
        rollback redeploys the same payloads, and it is part of the spec digest.
        """
        target = load_manifest(manifest, overrides, key, bundle)
        active = self._active_by_key.get(target.key)
        if active is not None and same_target(active, target):
            self._record(active, now, "deploy", overrides, key)
            return active.record.snapshot()  # R3 step 0: what is already rolling out creates nothing
        journal = self._start(target, now, "deploy")
        self._record(journal, now, "deploy", overrides, key)
        return self._saved(journal)

    def promote(self, id_or_key: str, *, now: float) -> DeploymentRecord:
        rollout = self._active_rollout(id_or_key, Trigger.PROMOTE)
        self._apply(rollout, rollout.promote(now), now)
        self._record(rollout, now, "promote")  # once accepted: the rollout may still refuse it
        return self._saved(rollout)

    def pause(self, id_or_key: str, reason: str | None = None, *, now: float) -> DeploymentRecord:
        check_text("reason", reason)
        rollout = self._active_rollout(id_or_key, Trigger.PAUSE)
        self._apply(rollout, rollout.pause(now, reason), now)
        self._record(rollout, now, "pause", reason=reason)
        return self._saved(rollout)

    def resume(self, id_or_key: str, reason: str | None = None, *, now: float) -> DeploymentRecord:
        check_text("reason", reason)
        rollout = self._active_rollout(id_or_key, Trigger.RESUME)
        self._apply(rollout, rollout.resume(now, reason), now)
        self._record(rollout, now, "resume", reason=reason)
        return self._saved(rollout)

    def fail(self, id_or_key: str, reason: str | None = None, *, now: float) -> DeploymentRecord:
        check_text("reason", reason)
        rollout = self._active_rollout(id_or_key, Trigger.FAIL)
        self._fail(rollout, now, FAILED_BY_OPERATOR, reason)
        self._record(rollout, now, "fail", reason=reason)
        return self._saved(rollout)

    def rollback(
        self,
        id_or_key: str,
        version: str | None = None,
        reason: str | None = None,
        tag: str | None = None,
        *,
        now: float,
    ) -> DeploymentRecord:
        """A new forward version copying the chosen one (R11; versions.rollback_target chooses)."""
        check_text("reason", reason)
        check_text("tag", tag)
        key = self.get(id_or_key).deployment_key
        active = self._active_by_key.get(key)
        current = self._router.current_record(key)
        from_version = active.version.version if active else current.current_version if current else None
        target = rollback_target(key, self._store.list_versions(key), current=from_version, version=version, tag=tag)
        rollback = {"from_version": from_version, "to_version": target.version, "reason": reason}
        journal = self._start(manifest_of(target), now, "rollback", rollback)
        self._record(journal, now, "rollback", version=target.version, tag=tag, reason=reason)
        return self._saved(journal)

    def get(self, id_or_key: str) -> DeploymentRecord:
        """By id first, then by key (the key's current deployment)."""
        record = self._store.load_deployment(id_or_key) or self._router.current_record(id_or_key)
        if record is None:
            raise NotFoundError(id_or_key)
        return record

    def list(
        self, key: str | None = None, status: str | None = None, *, after: str | None = None, limit: int | None = None
    ) -> builtins.list[DeploymentRecord]:
        """A page of records by id (the store's `list_deployments`)."""
        return self._store.list_deployments(key, status, after=after, limit=limit)

    def versions(self, key: str) -> builtins.list[VersionRecord]:
        return self._store.list_versions(key)

    def instances(self, key: str | None = None) -> builtins.list[InstanceRecord]:
        """The live instances (of one key), as the store would keep them."""
        return self._actuator.fleet.records(key)

    # ---- driver API --------------------------------------------------------------------------

    def restore(self, now: float) -> builtins.list[str]:
        """Take over from a previous controller: live instances, each key's current job and every active
        deployment are rebuilt from the store, then each deployment goes on (takeover.py). What the store lacked
        is repaired in the same commit, never refused; returns one line per repair, for the driver to log."""
        takeover = restore(self._store, self._actuator, self._health, self._touched, now)
        for rollout in takeover.rollouts:
            self._activate(rollout)
            deadline, pause = rollout.record.require_progress_by_ms, rollout.pause_until
            timers = ((deadline, Kind.DEADLINE), (pause, Kind.STEP_PAUSE))
            resumed = [Wake(at, kind) for at, kind in timers if at is not None]
            self._apply(rollout, [*resumed, *rollout.start(now)], now)
        self._flush()
        return takeover.repairs

    def observe(self, fact: Fact, now: float) -> None:
        """Fold one runtime fact in; O(1) apart from what the resulting decision places or stops."""
        instance = self._actuator.fleet.instances.get(fact.instance_id)
        if instance is None:
            return
        if self._recorder is not None:
            self._recorder.record(instance.deployment_id, now, fact_entry(fact))
        if fact.kind is FactKind.PLACED:  # the core placed it itself: news for a trace only
            return
        verdict = self._actuator.observe(instance, fact, now)
        if verdict is not None:
            self._on_verdict(instance, verdict, now)
        elif fact.kind is FactKind.FAILED and self._owner(instance) is None:  # lost after an unhealthy verdict
            self._reconciler.judged(instance, Verdict.UNHEALTHY, now)
        self._flush()

    def tick(self, now: float) -> None:
        """Fire every timer due by `now`, in time order (a health verdict before a deadline at the same ms)."""
        while (due := self._timers.pop_due(now)) is not None:
            at, kind, key = due
            if kind is Kind.HEALTH:
                verdict = self._health.due(key, at)
                if verdict is not None:
                    self._on_verdict(self._actuator.fleet.instances[key], verdict, at)
            elif kind is Kind.DEADLINE:
                rollout = self._active[key]
                deadline = rollout.record.require_progress_by_ms
                if rollout.deadline_passed(at):
                    self._fail(rollout, at, FAILED_DEADLINE, None)
                elif deadline is not None:  # extended since this entry was set: wait for the new deadline
                    self._timers.set(deadline, Kind.DEADLINE, key)
            else:
                rollout = self._active[key]
                self._apply(rollout, rollout.pause_elapsed(at), at)
        self._flush()

    def next_wakeup(self) -> float | None:
        return self._timers.next_at()

    def new_wakeup(self) -> float | None:
        """The earliest timer set since the last call (None: none was): after a call, a driver that set its
        alarm at `next_wakeup()` need only move it earlier to this; it asks `next_wakeup()` when the alarm rings."""
        return self._timers.take_earliest_new()

    def _record(
        self,
        journal: Journal,
        now: float,
        verb: str,
        overrides: Mapping[str, Any] | None = None,
        key: str | None = None,
        **options: str | None,
    ) -> None:
        """An accepted operator call, for a trace: a deploy names the version it resolved to, anything else the
        deployment it applied to (a rollback: its key, as rollbacks are per key)."""
        if self._recorder is None:
            return
        record = journal.record
        if verb == "deploy":
            target = manifest_name(record.deployment_key, record.target_version or record.current_version or "")
            entry = action_entry(verb, target=target, overrides=dict(overrides) if overrides else None, key=key)
        elif verb == "rollback":
            entry = action_entry(verb, target=record.deployment_key, **options)
        else:
            entry = action_entry(verb, target=record.deployment_id, **options)
        self._recorder.record(record.deployment_id, now, entry)

    # ---- applying decisions --------------------------------------------------------------------

    def _start(
        self,
        target: Manifest,
        now: float,
        created_by: str,
        rollback: Mapping[str, Any] | None = None,
        revert_of: Rollout | None = None,
    ) -> Journal:
        """R3/R4: cancel the key's active deployment, then route the new one (all in the call's one commit)."""
        active = self._active_by_key.get(target.key)
        if active is not None:
            self._end(active, now, Trigger.CANCEL, CANCELLED, "deployment_cancelled")
        journal = self._router.route(target, now, created_by, rollback, revert_of)
        if isinstance(journal, Rollout):
            self._activate(journal)
            self._apply(journal, journal.start(now), now)
        return journal

    def _apply(self, rollout: Rollout, effects: Iterable[Effect], now: float) -> None:
        """Carry out a rollout's decision: its effects in order, through the ports, then the timers."""
        for effect in effects:
            match effect:
                case Place():
                    self._actuator.place(rollout, effect, now)
                case Stop():
                    self._actuator.stop_id(effect.instance_id, now)
                case Promote():
                    self._actuator.promote(rollout, effect.instance_ids, now)
                case Finish():
                    self._router.finish(rollout, now)
                    self._retire(rollout)
                case Fail():
                    self._fail(rollout, now, effect.description, None)
                case Wake():
                    self._timers.set(effect.at, effect.kind, rollout.deployment_id)

    def _fail(self, rollout: Rollout, now: float, base: str, reason: str | None) -> None:
        """R10: stop what was never promoted; with auto_revert redeploy the last stable version."""
        suffix, target = revert_decision(
            self._store.list_versions(rollout.key),
            failed_version=rollout.version.version,
            failed_spec_digest=rollout.manifest.spec_digest,
            auto_revert=rollout.policy.auto_revert,
        )
        manifest = None
        if target is not None:
            try:
                manifest = manifest_of(target)
            except UndeployableVersionError:
                suffix = undeployable_suffix(target.version)
        self._end(rollout, now, Trigger.FAIL, base + suffix, "deployment_failed", reason=reason or base)
        if target is None or manifest is None:
            return
        rollout.set(now, reverted_to_version=target.version)
        rollout.event("deployment_reverted", now, to_version=target.version)
        rollback = {"from_version": rollout.version.version, "to_version": target.version, "reason": base}
        self._start(manifest, now, "auto_revert", rollback, revert_of=rollout)

    def _end(self, rollout: Rollout, now: float, trigger: Trigger, description: str, event: str, **fields: Any) -> None:
        """Freeze an active deployment (cancel or fail, R4, R10): it leaves the active ones first."""
        effects = rollout.end(now, trigger, description, event, **fields)
        self._retire(rollout)
        self._apply(rollout, effects, now)

    def _on_verdict(self, instance: Instance, verdict: Verdict, now: float) -> None:
        """The rollout that owns the instance decides (R8, R9); for any other, standing reconciliation (R16)."""
        self._actuator.judged(instance, verdict, now)
        rollout = self._owner(instance)
        if rollout is not None:
            self._apply(rollout, rollout.on_verdict(instance, verdict, now), now)
        else:
            self._reconciler.judged(instance, verdict, now)

    def _owner(self, instance: Instance) -> Rollout | None:
        rollout = self._active.get(instance.deployment_id)
        return rollout if rollout is not None and rollout.owns(instance) else None

    def _journal(self, deployment_id: str) -> Journal | None:
        """A deployment's journal for this call: its active rollout, the one this call touched, or its record."""
        journal = self._active.get(deployment_id) or self._touched.get(deployment_id)
        if journal is not None:
            return journal
        record = self._store.load_deployment(deployment_id)
        return None if record is None else Journal(record, self._touched)

    def _live(self, kind: Kind, key: str, at: float) -> bool:
        """Whether a timer still stands: its instance's health timer, or its deployment's deadline or pause."""
        if kind is Kind.HEALTH:
            return self._health.live(key, at)
        rollout = self._active.get(key)
        if rollout is None:
            return False
        if kind is Kind.DEADLINE:  # an earlier entry stands for a deadline extended since (rollout.py)
            deadline = rollout.record.require_progress_by_ms
            return rollout.deadline_enforced and deadline is not None and at <= deadline
        return rollout.pause_until == at

    def _activate(self, rollout: Rollout) -> None:
        self._active[rollout.deployment_id] = rollout
        self._active_by_key[rollout.key] = rollout

    def _retire(self, rollout: Rollout) -> None:
        self._active.pop(rollout.deployment_id, None)
        if self._active_by_key.get(rollout.key) is rollout:
            del self._active_by_key[rollout.key]

    def _active_rollout(self, id_or_key: str, trigger: Trigger) -> Rollout:
        """The active rollout an operator verb applies to; a terminal one refuses it (R11)."""
        record = self.get(id_or_key)
        rollout = self._active.get(record.deployment_id)
        if rollout is None:  # terminal: the table has no row for an operator verb there, so this raises
            transition(record.deployment_id, record.status, trigger, record.previous_status)
            raise RefusedError(f"deployment {record.deployment_id} is {record.status}")
        return rollout

    def _saved(self, journal: Journal) -> DeploymentRecord:
        self._flush()
        return journal.record.snapshot()

    def _flush(self) -> None:
        """Hand the store what this call changed, as one batch: instances, versions, records with events.
        Most facts change nothing, so that is checked first."""
        if not (self._touched or self._actuator.unsaved or self._router.unsaved):
            return
        journals = list(self._touched.values())
        self._touched.clear()
        changed, removed = self._actuator.take_changes()
        versions = self._router.take_versions()
        records = [(j.record, tuple(j.unsaved)) for j in journals]
        revisions = self._store.commit(Commit(records, versions, changed, removed))
        for journal, revision in zip(journals, revisions, strict=True):
            journal.record.revision = revision
            journal.unsaved = []
