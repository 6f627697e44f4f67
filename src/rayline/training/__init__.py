"""Training on Ray clusters: specs, datasets, Ray Train trainers, model artifacts.

Example:
    >>> from rayline.training import load_spec, submit_training, follow
    >>> spec = load_spec("iris.yaml")  # doctest: +SKIP
    >>> job = submit_training(cluster.job_api_url, spec)  # doctest: +SKIP
    >>> follow(cluster.job_api_url, job, on_output=print).result["version"]  # doctest: +SKIP
    3
"""

from rayline.training.artifacts import Predictor, load_model, load_registered_model
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
from rayline.training.submit import JobOutcome, follow, stop_training, submit_training

__all__ = [
    "SPEC_VERSION",
    "DatasetError",
    "DatasetNotFoundError",
    "DatasetUnreachableError",
    "EmptyDatasetError",
    "InsufficientResourcesError",
    "InvalidInputError",
    "InvalidSpecError",
    "JobOutcome",
    "MissingTargetError",
    "ModelLoadError",
    "NonNumericFeaturesError",
    "Predictor",
    "TrainingError",
    "TrainingFailedError",
    "TrainingJobError",
    "TrainingSpec",
    "follow",
    "load_model",
    "load_registered_model",
    "load_spec",
    "stop_training",
    "submit_training",
]
