"""Exceptions raised by the metadata store.

Each one names what is wrong and how to fix it. Not-found errors also derive
from :class:`LookupError` and transition errors from :class:`ValueError`, so
callers that only care about the broad kind can catch those.
"""

from __future__ import annotations

__all__ = [
    "AliasNotFoundError",
    "ClusterNotFoundError",
    "InvalidTransitionError",
    "MetadataError",
    "ModelNotFoundError",
    "ModelVersionNotFoundError",
    "NotFoundError",
    "UnsupportedDatabaseError",
    "WorkflowRunNotFoundError",
    "WorkflowStepNotFoundError",
]


class MetadataError(Exception):
    """Base class of every metadata store error."""


class UnsupportedDatabaseError(MetadataError, ValueError):
    """The database URL names a backend Rayline does not support."""

    def __init__(self, backend: str) -> None:
        super().__init__(
            f"metadata store backend {backend!r} is not supported; set RAYLINE_DATABASE_URL "
            "to sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB"
        )


class NotFoundError(MetadataError, LookupError):
    """A row the caller asked for does not exist."""


class ModelNotFoundError(NotFoundError):
    """No registered model has this name."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"model {name!r} is not registered; register a version first "
            "(ModelRegistry.register_version) or check the name"
        )


class ModelVersionNotFoundError(NotFoundError):
    """The model exists but has no such (live) version."""

    def __init__(self, name: str, version: int | None) -> None:
        self.name = name
        self.version = version
        what = "no live version" if version is None else f"no version {version}"
        super().__init__(
            f"model {name!r} has {what}; list the versions with ModelRegistry.list_versions"
        )


class AliasNotFoundError(NotFoundError):
    """The model has no alias of this name."""

    def __init__(self, name: str, alias: str) -> None:
        self.name = name
        self.alias = alias
        super().__init__(
            f"model {name!r} has no alias {alias!r}; create it with ModelRegistry.set_alias"
        )


class ClusterNotFoundError(NotFoundError):
    """No cluster row has this id."""

    def __init__(self, cluster_id: str) -> None:
        self.cluster_id = cluster_id
        super().__init__(f"cluster {cluster_id!r} does not exist in the metadata store")


class WorkflowRunNotFoundError(NotFoundError):
    """No workflow run row has this id."""

    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        super().__init__(f"workflow run {run_id} does not exist; start it with start_run first")


class WorkflowStepNotFoundError(NotFoundError):
    """No workflow step row has this id."""

    def __init__(self, step_id: int) -> None:
        self.step_id = step_id
        super().__init__(f"workflow step {step_id} does not exist; start it with start_step first")


class InvalidTransitionError(MetadataError, ValueError):
    """The cluster lifecycle forbids moving from one state to the other."""

    def __init__(self, cluster_id: str, from_state: str, to_state: str, allowed: list[str]) -> None:
        self.cluster_id = cluster_id
        self.from_state = from_state
        self.to_state = to_state
        targets = ", ".join(allowed) if allowed else "nothing (it is final)"
        super().__init__(
            f"cluster {cluster_id} cannot go from {from_state} to {to_state}; from "
            f"{from_state} it may go to {targets}. Re-read the cluster: another actor "
            "may have moved it first"
        )
