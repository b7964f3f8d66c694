"""Which version a rollback or an auto-revert goes back to (R10, R11): pure choices over a key's versions.

These choices live here alone so that no driver picks a version itself: the CLI, the gRPC service and the
simulator pass on what the operator asked for (a version, a tag) and the core decides. The highest match wins;
"highest" is `version_order`, so the answer does not depend on the order the versions come in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from mn_deploy_core.errors import NoRollbackTargetError
from mn_deploy_core.records import VersionRecord, version_order


def rollback_target(
    key: str,
    versions: Sequence[VersionRecord],
    *,
    current: str | None,
    version: str | None = None,
    tag: str | None = None,
) -> VersionRecord:
    """The version a rollback of `key` copies (R11).

    Nothing asked → the highest stable version other than `current` (mid-rollout the caller passes the version
    rolling out, so this means "the last stable one"). Otherwise the highest version matching everything asked:
    a tag and a version together must name the same version (MirrorNeuron matches the version against the tag,
    quirk §16.6; we don't). A named version or tag need not be stable. Blank values count as not given, as on
    the wire. Raises NoRollbackTargetError when nothing matches.
    """
    version, tag = version or None, tag or None
    if version is None and tag is None:
        target = _highest_stable(versions, other_than=current)
    else:
        target = _highest(v for v in versions if _matches(v, version=version, tag=tag))
    if target is None:
        raise NoRollbackTargetError(key)
    return target


def revert_decision(
    versions: Sequence[VersionRecord], *, failed_version: str, failed_spec_digest: str, auto_revert: bool
) -> tuple[str, VersionRecord | None]:
    """What a failure with `auto_revert` does (R10): the description suffix, and the version to redeploy or None.

    The target is the highest stable version other than the failed one. One with the failed spec is not
    redeployed: it would fail the same way, and redeploying it could loop.
    """
    if not auto_revert:
        return "", None
    target = _highest_stable(versions, other_than=failed_version)
    if target is None:
        return " - no stable version to auto revert to", None
    if target.spec_digest == failed_spec_digest:
        return f" - not rolling back to stable version {target.version} as it has the same specification", None
    return f" - rolling back to version {target.version}", target


def undeployable_suffix(version: str) -> str:
    """The description suffix when the revert target is stored but no longer validates: nothing is deployed."""
    return f" - not rolling back to stable version {version} as it no longer validates"


def _highest_stable(versions: Iterable[VersionRecord], *, other_than: str | None) -> VersionRecord | None:
    """The default target of both rollback and auto-revert: the last version that proved itself, not `other_than`."""
    return _highest(v for v in versions if v.stable and v.version != other_than)


def _matches(record: VersionRecord, *, version: str | None, tag: str | None) -> bool:
    """Every criterion given holds; None means "any"."""
    return version in (None, record.version) and tag in (None, record.tag)


def _highest(versions: Iterable[VersionRecord]) -> VersionRecord | None:
    return max(versions, key=lambda v: version_order(v.version), default=None)
