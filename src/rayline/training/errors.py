"""Domain errors of training: each names the problem and how to fix it.

Bad input (:class:`InvalidSpecError`, :class:`DatasetError` and its kinds,
:class:`InsufficientResourcesError`) is found before any training starts, so a
job that raises one has written nothing and registered no model version.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

__all__ = [
    "DatasetError",
    "DatasetNotFoundError",
    "DatasetOutsideRootsError",
    "DatasetUnreachableError",
    "EmptyDatasetError",
    "InsufficientResourcesError",
    "InvalidInputError",
    "InvalidSpecError",
    "MissingTargetError",
    "ModelLoadError",
    "NonNumericFeaturesError",
    "TrainingError",
    "TrainingFailedError",
    "TrainingJobError",
]


class TrainingError(Exception):
    """Base class of every error raised by :mod:`rayline.training`."""


class InvalidSpecError(TrainingError, ValueError):
    """A training spec is malformed or asks for something impossible."""

    def __init__(self, where: str, problems: Sequence[str]) -> None:
        self.where = where
        self.problems = list(problems)
        listed = "; ".join(self.problems)
        super().__init__(f"invalid training spec {where}: {listed}")


class DatasetError(TrainingError):
    """The dataset cannot be used for training."""


class DatasetNotFoundError(DatasetError, LookupError):
    """The dataset URI points at nothing."""

    def __init__(self, uri: str, detail: str = "") -> None:
        self.uri = uri
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"dataset {uri} does not exist{extra}; check the URI, or upload the file first"
        )


class DatasetOutsideRootsError(DatasetError):
    """A ``file://`` dataset (or a file inside it) lies outside the directories training may read.

    Attributes:
        uri: The dataset URI.
        resolved: The offending path with symlinks resolved.
        roots: The allowed directories (``RAYLINE_DATA_ROOTS``).
    """

    def __init__(self, uri: str, resolved: str, roots: Sequence[str], *, path: str = "") -> None:
        self.uri = uri
        self.resolved = resolved
        self.roots = list(roots)
        shown = ", ".join(self.roots) or "(none)"
        where = f" ({path} resolves to {resolved})" if path and path != resolved else ""
        super().__init__(
            f"dataset {uri}{where} is outside the directories training may read: {shown}; "
            "fix `dataset` in the spec, move the data under one of them, or add its "
            "directory to RAYLINE_DATA_ROOTS"
        )


class DatasetUnreachableError(DatasetError):
    """The storage holding the dataset cannot be reached or refused access."""

    def __init__(self, uri: str, detail: str, endpoint: str | None = None) -> None:
        self.uri = uri
        # Name the endpoint in use: the storage library's own wording of it varies.
        endpoint = endpoint or os.environ.get("RAYLINE_S3_ENDPOINT_URL")
        setting = f"RAYLINE_S3_ENDPOINT_URL ({endpoint})" if endpoint else "RAYLINE_S3_ENDPOINT_URL"
        super().__init__(
            f"cannot read dataset {uri}: {detail}; check {setting} and the "
            "S3 credentials, and that the S3 server is up"
        )


class EmptyDatasetError(DatasetError):
    """The dataset has no rows."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        super().__init__(f"dataset {uri} has no rows; there is nothing to train on")


class MissingTargetError(DatasetError, KeyError):
    """The target column is not in the dataset."""

    def __init__(self, uri: str, target: str, columns: Sequence[str]) -> None:
        self.uri = uri
        self.target = target
        shown = ", ".join(repr(c) for c in list(columns)[:20])
        more = ", ..." if len(columns) > 20 else ""
        super().__init__(
            f"target column {target!r} is not in dataset {uri} (columns: {shown}{more}); "
            "fix `target` in the spec"
        )

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class NonNumericFeaturesError(DatasetError, TypeError):
    """Feature (or regression target) columns hold values that are not numbers."""

    def __init__(self, uri: str, columns: dict[str, str], *, what: str = "feature") -> None:
        self.uri = uri
        self.columns = dict(columns)
        shown = ", ".join(f"{name!r} ({kind})" for name, kind in list(columns.items())[:20])
        super().__init__(
            f"{what} columns of dataset {uri} must be numeric, but these are not: {shown}; "
            "encode them as numbers before training or drop them"
        )


class InsufficientResourcesError(TrainingError):
    """The cluster cannot place the workers the spec asks for."""


class TrainingFailedError(TrainingError):
    """Training itself failed (after any retries the spec allowed)."""


class TrainingJobError(TrainingError):
    """Submitting or following a training job on a Ray cluster failed."""


class ModelLoadError(TrainingError):
    """A published model version cannot be loaded."""


class InvalidInputError(TrainingError, ValueError):
    """Rows given to a predictor do not match the model's input signature."""
