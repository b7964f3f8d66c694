"""R15: call overrides from clients. They take precedence over the manifest, except the five defaults the official
`mn deployment deploy` sends with every call: those leave each field the manifest's `policies.update` sets alone,
and the deployment's first event says which.
"""

from __future__ import annotations

from typing import Any

import pytest

from mn_deploy_core.errors import InvalidManifestError
from mn_deploy_core.manifest import load_manifest
from mn_deploy_core.policy import CLI_DEFAULTS, UpdatePolicy, call_overrides
from mn_deploy_core.ports import FactKind
from mn_deploy_core.status import FAILED_UNHEALTHY
from tests.scripted import World, service_manifest

KEY = "agent-api"
P = "policies.update"
CLI = {"strategy": "rolling", "max_parallel": 1, "canary": 0, "auto_promote": False, "auto_revert": False}
IGNORED = "deployment_policy_overrides_ignored"
TIMING = {"min_healthy_ms": 1000, "healthy_deadline_ms": 25_000, "progress_deadline_ms": 60_000}

# each field of the five, set by a manifest to something else than the CLI's default (valid on its own)
MANIFEST_VALUES = {
    "strategy": "canary",
    "max_parallel": 3,
    "canary": 2,
    "auto_promote": True,
    "auto_revert": True,
}


def manifest(image: str = "agent:1", **update: Any) -> dict[str, Any]:
    return service_manifest(image, update={**TIMING, **update})


def events(world: World, id_or_key: str = KEY) -> list[Any]:
    return list(world.store.deployment_events(world.record(id_or_key).deployment_id))


def problems_of(document: Any, overrides: Any) -> tuple[str, ...]:
    with pytest.raises(InvalidManifestError) as info:
        load_manifest(document, overrides=overrides)
    return info.value.problems


def test_r15_the_cli_defaults_are_mn_sdks_defaults() -> None:
    from mn_sdk import deployment_policy

    assert {**CLI_DEFAULTS, "version": 1} == {**CLI, "version": 1} == deployment_policy()


# --- the exact five defaults keep what the manifest sets -------------------------------------------------------


@pytest.mark.parametrize("field", sorted(MANIFEST_VALUES))
def test_r15_the_exact_cli_defaults_keep_each_field_the_manifest_sets(field: str) -> None:
    value = MANIFEST_VALUES[field]
    loaded = load_manifest(manifest(**{field: value}), overrides=CLI)

    assert getattr(loaded.policy, field) == value
    others = {name: getattr(loaded.policy, name) for name in CLI if name != field}
    assert others == {name: default for name, default in CLI.items() if name != field}
    assert loaded.overrides_ignored == (field,)
    # the stored document is what ran, so a rollback to this version keeps the manifest's value too
    assert loaded.document["policies"]["update"][field] == value
    assert load_manifest(loaded.document).policy == loaded.policy


def test_r15_every_field_the_manifest_sets_is_kept_and_named_sorted() -> None:
    loaded = load_manifest(manifest(**MANIFEST_VALUES), overrides=dict(reversed(CLI.items())))

    assert {name: getattr(loaded.policy, name) for name in CLI} == MANIFEST_VALUES
    assert loaded.overrides_ignored == ("auto_promote", "auto_revert", "canary", "max_parallel", "strategy")


def test_r15_a_manifest_value_equal_to_the_default_is_kept_and_named_too() -> None:
    loaded = load_manifest(manifest(strategy="rolling", auto_revert=False), overrides=CLI)

    assert loaded.policy.auto_revert is False
    assert loaded.overrides_ignored == ("auto_revert", "strategy")


def test_r15_the_defaults_are_compared_after_normalization() -> None:
    loaded = load_manifest(manifest(auto_revert=True), overrides={**CLI, "strategy": " Rolling "})

    assert loaded.policy.auto_revert is True
    assert loaded.overrides_ignored == ("auto_revert",)


def test_r15_auto_revert_true_in_the_manifest_survives_a_deploy_with_the_cli_defaults() -> None:
    world = World.settled(manifest(auto_revert=True))
    world.clock.now = 10_000
    record = world.deploy(manifest("agent:2", max_parallel=1, auto_revert=True), overrides=CLI)

    assert record.policy["auto_revert"] is True
    first = events(world, record.deployment_id)[0]
    assert (first.type, first.fields) == (IGNORED, {"fields": ["auto_revert", "max_parallel"]})
    assert first.t_ms == 10_000

    # worker-0 rolls, then worker-1 fails twice (reschedule 1): the deployment fails and reverts to version 1
    world.bring_up()
    world.advance(world.clock.now + 1000)
    (second,) = world.fresh()
    for _ in range(2):
        world.report(second, FactKind.FAILED)
        second = next((i for i in world.fresh() if world.runtime.placements[i].agent_id == "worker-1"), second)
    failed = world.record(record.deployment_id)
    assert failed.status == "failed"
    assert failed.description == f"{FAILED_UNHEALTHY} - rolling back to version 1"
    assert world.record(KEY).rollback == {"from_version": "2", "to_version": "1", "reason": FAILED_UNHEALTHY}


def test_r15_the_event_comes_first_whichever_way_a_deploy_is_routed() -> None:
    world = World()
    first = world.deploy(manifest(auto_revert=True), overrides=CLI)
    world.converge()
    noop = world.deploy(manifest(auto_revert=True), overrides=CLI)
    rolling = world.deploy(manifest("agent:2", auto_revert=True), overrides=CLI)
    world.converge()
    blue_green = world.deploy(manifest("agent:3", strategy="blue-green"), overrides=CLI)
    batch = World()
    batch_first = batch.deploy(service_manifest(job_type="batch", update={"auto_revert": True}), overrides=CLI)
    rerun = batch.deploy(service_manifest("agent:2", job_type="batch", update={"auto_revert": True}), overrides=CLI)

    def types(w: World, deployment_id: str) -> list[str]:
        return [e.type for e in events(w, deployment_id)][:2]

    assert types(world, first.deployment_id) == [IGNORED, "deployment_created"]
    assert types(world, noop.deployment_id) == [IGNORED, "deployment_noop"]
    assert types(world, rolling.deployment_id) == [IGNORED, "deployment_started"]
    assert types(world, blue_green.deployment_id) == [IGNORED, "deployment_started"]
    assert world.record(blue_green.deployment_id).strategy == "blue-green"
    assert batch_first.deployment_id != rerun.deployment_id
    assert types(batch, batch_first.deployment_id) == [IGNORED, "deployment_created"]
    assert types(batch, rerun.deployment_id) == [IGNORED, "deployment_version_recorded"]


# --- any other overrides apply in full ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {**CLI, "strategy": "canary"},
        {**CLI, "max_parallel": 2},
        {**CLI, "canary": 1},
        {**CLI, "auto_promote": True},
        {**CLI, "auto_revert": True},
        {**CLI, "min_healthy_ms": 500},
        {name: value for name, value in CLI.items() if name != "canary"},
        {"strategy": "rolling", "auto_revert": False},
    ],
    ids=["strategy", "max_parallel", "canary", "auto_promote", "auto_revert", "a_sixth_field", "four_of_five", "two"],
)
def test_r15_overrides_differing_from_the_cli_defaults_apply_in_full(overrides: dict[str, Any]) -> None:
    document = manifest(strategy="canary", canary=1, max_parallel=3, auto_promote=True, auto_revert=True)
    loaded = load_manifest(document, overrides=overrides)

    for name, value in overrides.items():
        assert loaded.policy.to_json()[name] == value
    assert loaded.overrides_ignored == ()


def test_r15_overrides_differing_in_one_field_write_no_event() -> None:
    world = World()
    record = world.deploy(manifest(auto_revert=True), overrides={**CLI, "max_parallel": 2})

    assert record.policy["auto_revert"] is False
    assert record.policy["max_parallel"] == 2
    assert IGNORED not in world.event_types(KEY)


def test_r15_the_cli_defaults_over_a_manifest_that_sets_none_of_them_apply_without_an_event() -> None:
    world = World()
    record = world.deploy(manifest(), overrides=CLI)
    loaded = load_manifest(manifest(), overrides=CLI)

    assert loaded.overrides_ignored == ()
    assert {name: getattr(loaded.policy, name) for name in CLI} == CLI
    assert loaded.document["policies"]["update"] == {**TIMING, **CLI}
    assert {name: record.policy[name] for name in CLI} == CLI
    assert world.event_types(KEY)[0] == "deployment_created"
    assert IGNORED not in world.event_types(KEY)


def test_r15_no_overrides_and_no_manifest_policy_are_untouched() -> None:
    assert call_overrides({"auto_revert": True}, None) == (None, ())
    assert call_overrides(None, CLI) == (CLI, ())
    assert call_overrides("not a mapping", CLI) == (CLI, ())
    assert call_overrides({"auto_revert": True}, CLI) == (
        {k: v for k, v in CLI.items() if k != "auto_revert"},
        ("auto_revert",),
    )
    assert load_manifest(service_manifest(), overrides=CLI).policy == UpdatePolicy(min_healthy_ms=1000)


# --- validation is unchanged -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({**CLI, "max_parallel": True}, f"{P}.max_parallel must be a non-negative integer"),
        ({**CLI, "canary": "0"}, f"{P}.canary must be a non-negative integer"),
        ({**CLI, "max_parallel": 1.0}, f"{P}.max_parallel must be a non-negative integer"),
        ({**CLI, "auto_revert": 0}, f"{P}.auto_revert must be a boolean"),
        ({**CLI, "auto_promote": "false"}, f"{P}.auto_promote must be a boolean"),
        ({**CLI, "strategy": "teleport"}, f'{P}.strategy has unsupported value "teleport"'),
    ],
)
def test_r15_bad_overrides_are_refused_as_before(overrides: dict[str, Any], message: str) -> None:
    assert problems_of(manifest(auto_revert=True), overrides) == (message,)


def test_r15_a_bad_manifest_policy_is_refused_under_the_cli_defaults_too() -> None:
    assert problems_of(manifest(auto_revert="yes"), CLI) == (f"{P}.auto_revert must be a boolean",)
    # cross-field rules run on the merged policy: the manifest's canary strategy keeps the default canary 0
    document = manifest(strategy="canary", auto_promote=True)
    assert problems_of(document, CLI) == (f"{P}.auto_promote requires canary > 0 for canary deployments",)
