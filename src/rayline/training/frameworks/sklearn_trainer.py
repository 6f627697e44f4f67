"""scikit-learn estimators for small data: in the job's process, or on one Ray Train worker.

The estimator comes from a fixed list (:data:`rayline.training.params.SKLEARN_ESTIMATORS`);
its constructor arguments are the spec's other hyperparameters. The fitted
estimator is pickled: load it only from a store you trust (the loader checks
it against the sha256 recorded at publication).
"""

from __future__ import annotations

import importlib
import inspect
import pickle
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rayline.training.errors import InvalidSpecError
from rayline.training.frameworks.base import (
    Framework,
    LoopConfig,
    frame_to_xy,
    log,
    loop_config_with_shards,
    worker_shard,
)
from rayline.training.model_files import model_digest_metrics
from rayline.training.params import SKLEARN_ESTIMATORS

if TYPE_CHECKING:
    import pandas as pd
    from ray.train import RunConfig, ScalingConfig

    from rayline.training.frameworks.base import IterationCallback, Shards, Trainer

__all__ = ["SklearnFramework", "fit_and_save", "make_estimator"]

MODEL_FILE = "model.pkl"


def make_estimator(config: LoopConfig) -> Any:
    """Build the unfitted estimator the spec names, with its arguments.

    ``random_state`` and ``n_jobs`` are filled in from the spec when the
    estimator takes them and the spec did not set them.

    Raises:
        InvalidSpecError: The estimator does not take one of the arguments.
    """
    params = dict(config.hyperparameters)
    choice = str(params.pop("estimator"))
    classifier, regressor = SKLEARN_ESTIMATORS[choice]
    module, _, name = (classifier if config.task == "classification" else regressor).partition(":")
    cls = getattr(importlib.import_module(module), name)
    accepted = inspect.signature(cls).parameters
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise InvalidSpecError(
            "hyperparameters",
            [f"{name} ({choice}) takes no argument {key!r}" for key in unknown],
        )
    if "random_state" in accepted:
        params.setdefault("random_state", config.seed)
    if "n_jobs" in accepted:
        params.setdefault("n_jobs", max(1, int(config.cpus_per_worker)))
    return cls(**params)


def fit_and_save(config: LoopConfig, train: pd.DataFrame, model_path: Path) -> None:
    """Fit the estimator on every training row and pickle it to ``model_path``."""
    features, labels = frame_to_xy(train, config)
    estimator = make_estimator(config)
    log(f"sklearn: fitting {type(estimator).__name__} on {len(labels)} rows")
    estimator.fit(features, labels)
    model_path.write_bytes(pickle.dumps(estimator, protocol=5))


def _train_loop(raw: dict[str, Any]) -> None:
    """Fit on the whole (single) shard and report the pickled estimator."""
    import ray.train

    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:  # fitted before a failure: report it again
        log("sklearn: model already fitted before the restart; reusing its checkpoint")
        with checkpoint.as_directory() as path:
            digest = model_digest_metrics(Path(path), MODEL_FILE)
        ray.train.report({"iteration": 1, "resumed_from": 1, **digest}, checkpoint=checkpoint)
        return
    config = LoopConfig.from_dict(raw)
    with tempfile.TemporaryDirectory() as tmp:
        fit_and_save(config, worker_shard(raw, "train").to_pandas(), Path(tmp, MODEL_FILE))
        ray.train.report(
            {"iteration": 1, "resumed_from": 0, **model_digest_metrics(Path(tmp), MODEL_FILE)},
            checkpoint=ray.train.Checkpoint.from_directory(tmp),
        )


class _EstimatorScorer:
    def __init__(self, estimator: Any, config: LoopConfig) -> None:
        self._estimator = estimator
        self._config = config

    def scores(self, features: np.ndarray) -> np.ndarray:
        if self._config.task == "regression":
            return np.asarray(self._estimator.predict(features), dtype=np.float64)
        probabilities = np.asarray(self._estimator.predict_proba(features), dtype=np.float64)
        # predict_proba has one column per class seen in fit; map them to all classes.
        full = np.zeros((len(features), self._config.num_classes))
        full[:, np.asarray(self._estimator.classes_, dtype=np.int64)] = probabilities
        return full


class SklearnFramework(Framework):
    """Classic scikit-learn estimators (random forest, gradient boosting, linear, kNN)."""

    name = "sklearn"
    model_file = MODEL_FILE

    def preflight(self, config: LoopConfig, sample: pd.DataFrame) -> None:
        """Build the estimator and let scikit-learn check its parameters."""
        estimator = make_estimator(config)
        validate = getattr(estimator, "_validate_params", None)
        if validate is None:
            return
        try:
            validate()
        except (ValueError, TypeError) as err:  # InvalidParameterError is a ValueError
            raise InvalidSpecError("hyperparameters", [str(err)]) from None

    def make_trainer(
        self,
        config: LoopConfig,
        *,
        scaling: ScalingConfig,
        run_config: RunConfig,
        shards: Shards,
    ) -> Trainer:
        """A one-worker ``DataParallelTrainer`` (only ``train`` is used)."""
        from ray.train.v2.api.data_parallel_trainer import DataParallelTrainer

        return DataParallelTrainer(
            _train_loop,
            train_loop_config=loop_config_with_shards(config, {"train": shards["train"]}),
            scaling_config=scaling,
            run_config=run_config,
        )

    def fit_in_process(
        self,
        config: LoopConfig,
        train: pd.DataFrame,
        validation: pd.DataFrame,
        model_path: Path,
        on_iteration: IterationCallback,
    ) -> int:
        """Fit once on the training rows; one iteration."""
        fit_and_save(config, train, model_path)
        on_iteration(1, {})
        return 1

    def load(self, model_path: Path, config: LoopConfig) -> _EstimatorScorer:
        """Unpickle ``model.pkl`` (verified against its sha256 by the caller)."""
        estimator = pickle.loads(model_path.read_bytes())  # a checksummed artifact
        return _EstimatorScorer(estimator, config)
