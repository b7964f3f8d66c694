"""R10, R11: the choice of version behind a rollback and an auto-revert, on version lists alone.

Reference: SEMANTICS.md §9 (auto-revert target and suffixes), §10 (rollback target),
reference/mirrorneuron-deployments.md §9 and §16.6 (tags; a version given with a tag is matched against the tag
there, against the version here).
"""

from __future__ import annotations

import random

import pytest

from mn_deploy_core.errors import NoRollbackTargetError
from mn_deploy_core.records import VersionRecord, iso_timestamp, version_order
from mn_deploy_core.versions import revert_decision, rollback_target

KEY = "agent-api"
NO_TARGET = f"no rollback target found for deployment {KEY}"


def version(number: str, *, stable: bool = False, tag: str | None = None, spec: str | None = None) -> VersionRecord:
    """Version `number`; its spec is its own unless `spec` names another version's."""
    return VersionRecord(
        deployment_key=KEY,
        version=number,
        deployment_id=f"dep_{KEY}_{number}",
        job_id=None,
        manifest={"graph_id": KEY},
        spec_digest=f"spec-{spec or number}",
        created_at=iso_timestamp(0),
        updated_at=iso_timestamp(0),
        stable=stable,
        tag=tag,
    )


def history(*records: VersionRecord) -> list[VersionRecord]:
    """As a store returns them: sorted by `version_order`."""
    return sorted(records, key=lambda v: version_order(v.version))


# 1 and 2 stable, 3 never proved itself, 10 stable (so "highest" is numeric, not textual).
HISTORY = history(
    version("1", stable=True, tag="release-1"),
    version("2", stable=True, tag="release-2"),
    version("3", tag="release-3"),
    version("10", stable=True),
)


def target(versions: list[VersionRecord], **asked: str | None) -> str:
    return rollback_target(KEY, versions, **asked).version


def refused(versions: list[VersionRecord], **asked: str | None) -> str:
    with pytest.raises(NoRollbackTargetError) as raised:
        rollback_target(KEY, versions, **asked)
    return raised.value.message


# ---- rollback (R11) ----------------------------------------------------------------------------


def test_r11_default_is_the_highest_stable_version_other_than_the_current_one() -> None:
    assert target(HISTORY, current="10") == "2"
    assert target(HISTORY, current="2") == "10"
    assert target(HISTORY, current=None) == "10"


def test_r11_default_skips_versions_that_never_became_stable() -> None:
    assert target(history(version("1", stable=True), version("2", stable=True), version("3")), current="2") == "1"


def test_r11_mid_rollout_current_is_the_version_rolling_out() -> None:
    """Rolling out 11 while 10 is the last stable: rolling back means back to 10, not the one before it."""
    rolling = [*HISTORY, version("11")]

    assert target(rolling, current="11") == "10"


def test_r11_no_stable_version_other_than_the_current_one_has_no_target() -> None:
    assert refused(history(version("1", stable=True), version("2")), current="1") == NO_TARGET
    assert refused([], current=None) == NO_TARGET


def test_r11_by_version_takes_that_version_even_if_not_stable_or_current() -> None:
    assert target(HISTORY, current="10", version="3") == "3"
    assert target(HISTORY, current="10", version="10") == "10"


def test_r11_by_unknown_version_has_no_target() -> None:
    assert refused(HISTORY, current="10", version="7") == NO_TARGET


def test_r11_by_tag_takes_the_version_carrying_it() -> None:
    assert target(HISTORY, current="10", tag="release-1") == "1"
    assert target(HISTORY, current="10", tag="release-3") == "3"  # a tag need not be stable


def test_r11_by_tag_carried_twice_takes_the_highest() -> None:
    versions = history(version("1", tag="prod"), version("2", tag="prod"), version("3"))

    assert target(versions, current="3", tag="prod") == "2"


def test_r11_by_unknown_tag_has_no_target() -> None:
    assert refused(HISTORY, current="10", tag="release-9") == NO_TARGET


def test_r11_tag_and_version_that_agree_name_that_version() -> None:
    assert target(HISTORY, current="10", version="2", tag="release-2") == "2"


def test_r11_tag_and_version_that_disagree_have_no_target() -> None:
    """MirrorNeuron matches the version against the tag (quirk §16.6); here both must hold."""
    assert refused(HISTORY, current="10", version="1", tag="release-2") == NO_TARGET
    assert refused(HISTORY, current="10", version="release-2", tag="release-2") == NO_TARGET


def test_r11_blank_version_and_tag_count_as_not_given() -> None:
    assert target(HISTORY, current="10", version="", tag="") == "2"


def test_r11_the_answer_does_not_depend_on_the_order_given() -> None:
    shuffled = HISTORY.copy()
    random.Random(7).shuffle(shuffled)

    assert target(shuffled, current="10") == "2"
    assert target(shuffled, current="1") == "10"


# ---- auto-revert (R10) -------------------------------------------------------------------------


def revert(
    versions: list[VersionRecord], failed: str, *, spec: str | None = None, auto_revert: bool = True
) -> tuple[str, str | None]:
    suffix, chosen = revert_decision(
        versions, failed_version=failed, failed_spec_digest=f"spec-{spec or failed}", auto_revert=auto_revert
    )
    return suffix, chosen.version if chosen else None


def test_r10_without_auto_revert_nothing_is_added_or_redeployed() -> None:
    assert revert([*HISTORY, version("11")], "11", auto_revert=False) == ("", None)


def test_r10_rolls_back_to_the_highest_stable_version_other_than_the_failed_one() -> None:
    assert revert([*HISTORY, version("11")], "11") == (" - rolling back to version 10", "10")


def test_r10_a_failed_version_that_was_stable_is_not_its_own_target() -> None:
    """Fail on the stable version's own re-deployment: the target is the stable one before it."""
    assert revert(HISTORY, "10") == (" - rolling back to version 2", "2")


def test_r10_same_specification_is_not_redeployed() -> None:
    """The revert of a revert carries the target's spec: redeploying it again would loop."""
    versions = [*HISTORY, version("11", spec="10")]

    assert revert(versions, "11", spec="10") == (
        " - not rolling back to stable version 10 as it has the same specification",
        None,
    )


def test_r10_no_stable_version_other_than_the_failed_one_says_so() -> None:
    assert revert(history(version("1"), version("2")), "2") == (" - no stable version to auto revert to", None)
    assert revert(history(version("1", stable=True)), "1") == (" - no stable version to auto revert to", None)
