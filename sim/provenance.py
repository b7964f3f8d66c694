"""Which scenario manifest a running spec came from, so an instance behaves as that manifest says.

Specs are matched per agent by digest, so a rollback to version 1 behaves like the manifest version 1 was
deployed from. When several manifests share an agent's spec, the one the deploy action named wins, then
the first in file order.
"""

from __future__ import annotations

from collections.abc import Mapping

from mn_deploy_core.manifest import Manifest
from mn_deploy_core.ports import Placement
from mn_deploy_core.records import VersionRecord


class Provenance:
    def __init__(self, manifests: Mapping[str, Manifest]) -> None:
        self._manifests = manifests
        self._deployed: dict[tuple[str, str], str] = {}

    def deployed(self, key: str, version: str, manifest_name: str) -> None:
        """A deploy action of `manifest_name` created `version` of `key`."""
        self._deployed[(key, version)] = manifest_name

    def of_placement(self, placement: Placement) -> str | None:
        named = self._deployed.get((placement.deployment_key, placement.deployment_version))
        if named is not None and self._runs_agent(named, placement.agent_id, placement.spec_digest):
            return named
        return next(
            (n for n in self._manifests if self._runs_agent(n, placement.agent_id, placement.spec_digest)), None
        )

    def of_version(self, version: VersionRecord) -> str | None:
        named = self._deployed.get((version.deployment_key, version.version))
        if named is not None:
            return named
        return next((n for n, m in self._manifests.items() if m.spec_digest == version.spec_digest), None)

    def _runs_agent(self, name: str, agent_id: str, spec_digest: str) -> bool:
        spec = self._manifests[name].agents.get(agent_id)
        return spec is not None and spec.digest == spec_digest
