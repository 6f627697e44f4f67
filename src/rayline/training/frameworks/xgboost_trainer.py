"""XGBoost in the job's process (one worker) or data-parallel over Ray Train workers.

One worker trains with plain ``xgboost.train`` in the driver. Several use
``ray.train.xgboost.XGBoostTrainer``:

Each worker builds a ``DMatrix`` from its shard; XGBoost's collective (set up
by Ray Train) combines the histograms, so every worker grows the same trees.
Rank 0 writes a checkpoint every ``checkpoint_every`` rounds; after a worker
failure Ray Train restarts the group and every worker continues from the last
checkpoint's booster instead of from round zero.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import xgboost

from rayline.training.errors import InvalidSpecError
from rayline.training.frameworks.base import (
    Framework,
    IterationCallback,
    LoopConfig,
    Shards,
    Trainer,
    frame_to_xy,
    log,
    loop_config_with_shards,
    worker_shard,
)
from rayline.training.model_files import model_digest_metrics
from rayline.training.observer import IterationHistory

if TYPE_CHECKING:
    import pandas as pd
    from ray.train import RunConfig, ScalingConfig

__all__ = ["XGBoostFramework", "booster_params", "last_eval_metrics"]

MODEL_FILE = "model.ubj"  # the name RayTrainReportCallback.get_model reads


def booster_params(config: LoopConfig) -> dict[str, Any]:
    """``xgboost.train`` params: task defaults, then the spec's native params on top."""
    params: dict[str, Any] = {
        "tree_method": "hist",
        "seed": config.seed,
        "nthread": max(1, int(config.cpus_per_worker)),
    }
    if config.task == "regression":
        params.update(objective="reg:squarederror", eval_metric="rmse")
    elif config.num_classes == 2:
        params.update(objective="binary:logistic", eval_metric="logloss")
    else:
        params.update(
            objective="multi:softprob", eval_metric="mlogloss", num_class=config.num_classes
        )
    if config.use_gpu:
        params["device"] = "cuda"
    native = {k: v for k, v in config.hyperparameters.items() if k != "num_boost_round"}
    return {**params, **native}


class _Checkpointer(xgboost.callback.TrainingCallback):
    """Report a checkpoint every ``every`` rounds (counted from round zero) and at the end.

    Unlike Ray's ``RayTrainReportCallback`` it counts rounds across a resume, so
    checkpoints stay at multiples of ``every`` and the reported ``iteration`` is
    the booster's total number of rounds. Every rank calls ``report`` (Ray Train
    requires it); only rank 0 attaches the model.
    """

    def __init__(self, *, every: int, resumed_from: int) -> None:
        self._every = every
        self._resumed_from = resumed_from
        self._last_reported = resumed_from

    def after_iteration(self, model: xgboost.Booster, epoch: int, evals_log: Any) -> bool:
        rounds = model.num_boosted_rounds()
        if rounds % self._every == 0:
            self._report(model, evals_log)
        return False

    def after_training(self, model: xgboost.Booster) -> xgboost.Booster:
        if model.num_boosted_rounds() != self._last_reported:
            self._report(model, None)
        return model

    def _report(self, model: xgboost.Booster, evals_log: Any) -> None:
        import ray.train

        rounds = model.num_boosted_rounds()
        metrics: dict[str, Any] = {"iteration": rounds, "resumed_from": self._resumed_from}
        metrics |= last_eval_metrics(evals_log)
        rank = ray.train.get_context().get_world_rank()
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = None
            if rank == 0:
                model.save_model(str(Path(tmp, MODEL_FILE)))
                metrics |= model_digest_metrics(Path(tmp), MODEL_FILE)
                checkpoint = ray.train.Checkpoint.from_directory(tmp)
            ray.train.report(metrics, checkpoint=checkpoint)
        if rank == 0:
            log(f"xgboost: checkpoint at iteration {rounds}")
        self._last_reported = rounds


def last_eval_metrics(evals_log: Any) -> dict[str, float]:
    """``{"train-logloss": ..., "validation-logloss": ...}`` of the last round."""
    return {
        f"{split}-{name}": float(history[-1])
        for split, by_metric in (evals_log or {}).items()
        for name, history in by_metric.items()
    }


class _Progress(xgboost.callback.TrainingCallback):
    """In process: hand the metrics to ``on_iteration`` every ``every`` rounds and at the end."""

    def __init__(self, *, every: int, on_iteration: IterationCallback) -> None:
        self._every = every
        self._on_iteration = on_iteration
        self._last = last_eval_metrics(None)
        self._reported = 0

    def after_iteration(self, model: xgboost.Booster, epoch: int, evals_log: Any) -> bool:
        rounds = model.num_boosted_rounds()
        self._last = last_eval_metrics(evals_log)
        if rounds % self._every == 0:
            self._on_iteration(rounds, self._last)
            self._reported = rounds
        return False

    def after_training(self, model: xgboost.Booster) -> xgboost.Booster:
        if model.num_boosted_rounds() != self._reported:
            self._on_iteration(model.num_boosted_rounds(), self._last)
        return model


def _train_loop(raw: dict[str, Any]) -> IterationHistory:
    """The per-worker loop: shard -> DMatrix -> train (resuming from a checkpoint).

    Returns each round's train and validation metric (the run's loss curve).
    """
    import ray.train

    config = LoopConfig.from_dict(raw)
    train_x, train_y = frame_to_xy(worker_shard(raw, "train").to_pandas(), config)
    valid_x, valid_y = frame_to_xy(worker_shard(raw, "validation").to_pandas(), config)
    dtrain = xgboost.DMatrix(train_x, label=train_y)
    dvalid = xgboost.DMatrix(valid_x, label=valid_y)
    total = int(config.hyperparameters["num_boost_round"])
    booster, done = None, 0
    checkpoint = ray.train.get_checkpoint()
    rank = ray.train.get_context().get_world_rank()
    if checkpoint is not None:
        with checkpoint.as_directory() as path:
            booster = xgboost.Booster(model_file=str(Path(path, MODEL_FILE)))
        done = booster.num_boosted_rounds()
        if rank == 0:
            log(f"xgboost: resuming from checkpoint at iteration {done} of {total}")
    elif rank == 0:
        workers = ray.train.get_context().get_world_size()
        log(f"xgboost: training {total} rounds on {workers} workers")
    evals_result: dict[str, dict[str, list[float]]] = {}
    xgboost.train(
        booster_params(config),
        dtrain,
        num_boost_round=max(0, total - done),
        evals=[(dtrain, "train"), (dvalid, "validation")],
        xgb_model=booster,
        callbacks=[_Checkpointer(every=config.checkpoint_every, resumed_from=done)],
        verbose_eval=False,
        evals_result=evals_result,
    )
    return rounds_history(evals_result, first_step=done + 1)


def rounds_history(evals: dict[str, dict[str, list[float]]], first_step: int) -> IterationHistory:
    """``xgboost.train``'s ``evals_result`` as ``[(round, {"train-rmse": ...}), ...]``."""
    names = [(f"{split}-{k}", values) for split, by in evals.items() for k, values in by.items()]
    rounds = max((len(values) for _, values in names), default=0)
    return [
        (first_step + i, {name: float(values[i]) for name, values in names if i < len(values)})
        for i in range(rounds)
    ]


class _BoosterScorer:
    def __init__(self, booster: xgboost.Booster, config: LoopConfig) -> None:
        self._booster = booster
        self._config = config

    def scores(self, features: np.ndarray) -> np.ndarray:
        raw = self._booster.predict(xgboost.DMatrix(features))
        if self._config.task == "regression":
            return np.asarray(raw, dtype=np.float64)
        if raw.ndim == 1:  # binary:logistic gives P(class 1) only
            return np.column_stack([1.0 - raw, raw])
        return np.asarray(raw, dtype=np.float64)


class XGBoostFramework(Framework):
    """Gradient-boosted trees with XGBoost."""

    name = "xgboost"
    model_file = MODEL_FILE

    def preflight(self, config: LoopConfig, sample: pd.DataFrame) -> None:
        """Train one round on a few rows so bad params fail here, not on every worker."""
        features, labels = frame_to_xy(sample, config)
        params = {**booster_params(config), "nthread": 1}
        params.pop("device", None)
        try:
            xgboost.train(params, xgboost.DMatrix(features, label=labels), num_boost_round=1)
        except xgboost.core.XGBoostError as err:
            first = str(err).strip().splitlines()[0][:300]
            raise InvalidSpecError("hyperparameters", [f"xgboost refused them: {first}"]) from None

    def make_trainer(
        self,
        config: LoopConfig,
        *,
        scaling: ScalingConfig,
        run_config: RunConfig,
        shards: Shards,
    ) -> Trainer:
        """An ``XGBoostTrainer`` running :func:`_train_loop` on every worker."""
        from ray.train.xgboost import XGBoostTrainer

        return XGBoostTrainer(
            _train_loop,  # type: ignore[arg-type]  # rank 0's return value is Result.return_value
            train_loop_config=loop_config_with_shards(config, shards),
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
        """``xgboost.train`` on the whole training split, ``cpus_per_worker`` threads."""
        train_x, train_y = frame_to_xy(train, config)
        valid_x, valid_y = frame_to_xy(validation, config)
        dtrain = xgboost.DMatrix(train_x, label=train_y)
        dvalid = xgboost.DMatrix(valid_x, label=valid_y)
        total = int(config.hyperparameters["num_boost_round"])
        log(f"xgboost: training {total} rounds in process")
        booster = xgboost.train(
            booster_params(config),
            dtrain,
            num_boost_round=total,
            evals=[(dtrain, "train"), (dvalid, "validation")],
            callbacks=[_Progress(every=1, on_iteration=on_iteration)],  # the whole curve
            verbose_eval=False,
        )
        booster.save_model(str(model_path))
        return int(booster.num_boosted_rounds())

    def load(self, model_path: Path, config: LoopConfig) -> _BoosterScorer:
        """Load ``model.ubj``."""
        return _BoosterScorer(xgboost.Booster(model_file=str(model_path)), config)
