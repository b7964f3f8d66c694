"""Manifests by path: a scenario's `"manifests": {"v1": {"file": "../bundles/hello/v1.json"}}` rehearses the very
manifest a bundle deploys instead of a pasted copy that drifts from it.

The files are read into the document before anything else looks at it, so `--set manifests.v1...` overrides and
sweeps see the manifest itself. A relative path is resolved against the scenario file's directory (a document
given without a file: against `base`, by default the working directory).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mn_deploy_core.errors import InvalidManifestError
from mn_deploy_core.manifest import load_manifest
from sim.jsonfile import read_json
from sim.schema import Problems, ScenarioError, child, closed_object, text

FILE = "file"


def is_reference(value: Any) -> bool:
    """Whether a manifest entry points at a file (a manifest itself has no `file` key)."""
    return isinstance(value, Mapping) and FILE in value


def inline_manifest_files(document: Any, base: Path) -> Any:
    """`document` with every manifest given by path replaced by the file's manifest; ScenarioError naming the
    JSONPath and the file of each that cannot be read or is not a valid manifest. Anything else is left for the
    scenario's own checks."""
    if not isinstance(document, Mapping) or not isinstance(document.get("manifests"), Mapping):
        return document
    manifests = dict(document["manifests"])
    problems = Problems()
    for name, value in manifests.items():
        if is_reference(value):
            manifests[name] = problems.check(_read, value, child("$.manifests", name), base)
    problems.raise_any()
    return {**document, "manifests": manifests}


def _read(value: Any, path: str, base: Path) -> Any:
    """The manifest a reference at `path` names, read and checked."""
    where = child(path, FILE)
    file = base / text(closed_object(value, path, (FILE,))[FILE], where)
    try:
        manifest = read_json(file)
        load_manifest(manifest)
    except ScenarioError as error:
        raise ScenarioError(where, f"{file}: {error.problem}") from None
    except InvalidManifestError as error:
        raise ScenarioError(where, f"{file}: {error.message}") from None
    return manifest
