"""Training on Ray clusters: specs, datasets, Ray Train trainers, model artifacts.

Jobs that train on a cluster are submitted with `rayline.jobs.client.JobClient`;
a published version is loaded back with `rayline.models.load_model`.

Example:
    >>> from rayline.training import load_spec
    >>> spec = load_spec("iris.yaml")  # doctest: +SKIP
"""

from rayline.training.errors import (
    DatasetError,
    DatasetNotFoundError,
    DatasetUnreachableError,
    EmptyDatasetError,
    InsufficientResourcesError,
    InvalidInputError,
    InvalidSpecError,
    MissingTargetError,
    ModelLoadError,
    NonNumericFeaturesError,
    TrainingError,
    TrainingFailedError,
    TrainingJobError,
)
from rayline.training.spec import SPEC_VERSION, TrainingSpec, load_spec

__all__ = [
    "SPEC_VERSION",
    "DatasetError",
    "DatasetNotFoundError",
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
    "TrainingSpec",
    "load_spec",
]
