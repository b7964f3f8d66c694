"""Errors a user can cause, each carrying the exact message of docs/rules.md.

Drivers (CLI, gRPC) map them to one line and an exit or status code; the class says which.
"""

from __future__ import annotations

from collections.abc import Sequence


class DeploymentError(Exception):
    """Base class: the message is the one line a user sees."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(DeploymentError):
    """An unknown deployment id or key (`deployment <x> was not found`)."""

    def __init__(self, id_or_key: str) -> None:
        super().__init__(f"deployment {id_or_key} was not found")
        self.id_or_key = id_or_key


class InvalidManifestError(DeploymentError):
    """A manifest or override failed validation; every problem is listed, one line each."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


class InvalidArgumentError(DeploymentError):
    """An operator call's argument out of bounds (docs/rules.md R11: a reason or tag too long)."""


class RefusedError(DeploymentError):
    """An operator action the deployment's status does not allow."""


class NoRollbackTargetError(DeploymentError):
    """Rollback found no version to go back to."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no rollback target found for deployment {key}")


class UndeployableVersionError(DeploymentError):
    """A stored version whose manifest no longer validates (stored before a rule was added): it cannot run again."""

    def __init__(self, key: str, version: str, problems: Sequence[str]) -> None:
        super().__init__(f"version {version} of {key} can no longer be deployed: {'; '.join(problems)}")
        self.version = version


class ConflictError(DeploymentError):
    """A save named a revision another writer had already replaced."""

    def __init__(self, deployment_id: str, expected: int, actual: int) -> None:
        super().__init__(
            f"deployment {deployment_id} was changed by another writer (expected revision {expected}, found {actual})"
        )
        self.deployment_id = deployment_id
        self.expected = expected
        self.actual = actual
