"""The interface every framework implements, and what the training loops share.

A framework contributes four things: a Ray Train trainer running its
per-worker loop (several workers), the same training in the job's own process
(one worker: no Ray at all), a quick check of its hyperparameters in the driver
(so bad ones fail before any worker starts), and a loader that turns the saved
model file back into scores. Everything else (data, splits, metrics, artifacts,
registration) is common and lives in :mod:`rayline.training.runner`.
"""

from __future__ import annotations

import abc
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeAlias

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    from ray.train import Result, RunConfig, ScalingConfig

__all__ = [
    "Framework",
    "IterationCallback",
    "LoopConfig",
    "Scorer",
    "Shards",
    "Trainer",
    "frame_to_xy",
    "log",
    "loop_config_with_shards",
    "worker_shard",
]

#: Split name (``train``, ``validation``) -> one materialized Ray Dataset per worker rank.
Shards: TypeAlias = dict[str, list[Any]]
_SHARDS_KEY = "_shards"

#: Called by an in-process fit at each checkpoint step: ``(iteration, metrics)``
#: (``train-logloss``, ``validation-rmse``, ``train-loss`` ...).
IterationCallback: TypeAlias = Callable[[int, dict[str, float]], None]


@dataclass(frozen=True)
class LoopConfig:
    """Everything the per-worker loop needs; sent to every worker as a plain dict.

    Attributes:
        features: Feature column names, in model order.
        target: Target column (class indices for classification).
        task: ``classification`` or ``regression``.
        num_classes: Number of classes (0 for regression).
        hyperparameters: Resolved hyperparameters (Rayline's and native).
        checkpoint_every: Rounds or epochs between checkpoints.
        seed: Random seed.
        cpus_per_worker: CPUs each worker holds (thread count of the library).
        use_gpu: Whether workers hold GPUs.
        preprocessing: Framework-specific statistics computed in the driver.
    """

    features: list[str]
    target: str
    task: str
    num_classes: int
    hyperparameters: dict[str, Any]
    checkpoint_every: int
    seed: int
    cpus_per_worker: float
    use_gpu: bool = False
    preprocessing: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The dict handed to ``train_loop_config``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoopConfig:
        """Rebuild the config inside a worker (the shards, if any, are left out)."""
        return cls(**{k: v for k, v in data.items() if k != _SHARDS_KEY})


class Trainer(Protocol):
    """A Ray Train trainer: ``fit()`` runs the workers and returns the result."""

    def fit(self) -> Result:
        """Train until done (or out of retries)."""
        ...


class Scorer(Protocol):
    """A loaded model: class probabilities ``[n, k]`` or regression values ``[n]``."""

    def scores(self, features: np.ndarray) -> np.ndarray:
        """Score a ``float64`` feature matrix in signature order."""
        ...


class Framework(abc.ABC):
    """One training library behind Ray Train."""

    name: ClassVar[str]
    #: The model file inside a checkpoint and inside the published version.
    model_file: ClassVar[str]

    @abc.abstractmethod
    def preflight(self, config: LoopConfig, sample: pd.DataFrame) -> None:
        """Check the hyperparameters in the driver, on a few rows, before any worker starts.

        Raises:
            InvalidSpecError: A hyperparameter is unknown or has a bad value.
        """

    @abc.abstractmethod
    def make_trainer(
        self,
        config: LoopConfig,
        *,
        scaling: ScalingConfig,
        run_config: RunConfig,
        shards: Shards,
    ) -> Trainer:
        """Build the Ray Train trainer that runs this framework's per-worker loop.

        ``shards`` reach the loop through :func:`loop_config_with_shards`; the
        loop reads its own with :func:`worker_shard`.
        """

    @abc.abstractmethod
    def fit_in_process(
        self,
        config: LoopConfig,
        train: pd.DataFrame,
        validation: pd.DataFrame,
        model_path: Path,
        on_iteration: IterationCallback,
    ) -> int:
        """Train in this process on the whole split, as one worker would; no Ray involved.

        Args:
            config: The loop config, as a Ray Train worker would get it.
            train: The training rows (targets encoded).
            validation: The validation rows, for the per-iteration metrics.
            model_path: Where to save the model file (the format :meth:`load` reads).
            on_iteration: Called after every round or epoch (the loss curve).

        Returns:
            The rounds or epochs trained (``iterations`` in the lineage).
        """

    @abc.abstractmethod
    def load(self, model_path: Path, config: LoopConfig) -> Scorer:
        """Load a model file written by this framework's loop."""

    def preprocessing(self, config: LoopConfig, train: Any) -> dict[str, Any]:
        """Statistics the loop and the predictor need (e.g. feature scaling); none by default."""
        return {}


def loop_config_with_shards(config: LoopConfig, shards: Shards) -> dict[str, Any]:
    """The ``train_loop_config`` of a trainer: the loop config and each worker's data.

    The driver has already read, split and materialized the data with Ray Data;
    handing each worker its shard by reference spares Ray Train's ingest actors
    (a dataset manager, a split coordinator per dataset), whose start costs
    more than training a small model. Shards stay in the object store, so a
    restarted worker group after a failure reads the same rows again.
    """
    return {**config.to_dict(), _SHARDS_KEY: shards}


def worker_shard(raw: dict[str, Any], split: str) -> Any:
    """Inside a worker: this rank's shard of ``split``, a materialized ``ray.data.Dataset``."""
    import ray.train

    shards: list[Any] = raw[_SHARDS_KEY][split]
    return shards[ray.train.get_context().get_world_rank()]


def frame_to_xy(frame: pd.DataFrame, config: LoopConfig) -> tuple[np.ndarray, np.ndarray]:
    """Feature matrix (``float64``, signature order) and target vector of a frame."""
    features = frame[config.features].to_numpy(dtype=np.float64)
    labels = frame[config.target].to_numpy()
    if config.task == "classification":
        return features, labels.astype(np.int64)
    return features, labels.astype(np.float64)


def log(message: str) -> None:
    """Write a progress line into the job's logs (workers' output reaches the driver).

    ``sys.stdout.write``, not ``print``: Ray Train patches ``print`` in workers to
    also log each line, which would show every line twice.
    """
    sys.stdout.write(f"[rayline] {message}\n")
    sys.stdout.flush()
