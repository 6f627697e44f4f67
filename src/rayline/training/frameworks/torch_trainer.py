"""A multi-layer perceptron in PyTorch: in the job's process, or data-parallel with Ray Train.

One worker trains in the driver with plain torch; several use
``ray.train.torch.TorchTrainer`` (DDP over gloo on CPUs).

torch is optional (``pip install 'rayline[torch]'``) and imported only inside
the functions that need it. Features (and a regression target) are
standardised with statistics the driver computed on the training split; they
are saved in the model file so the predictor applies the same scaling.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rayline.training.errors import InvalidSpecError
from rayline.training.frameworks.base import (
    Framework,
    IterationCallback,
    LoopConfig,
    Shards,
    Trainer,
    log,
    loop_config_with_shards,
    worker_shard,
)
from rayline.training.model_files import model_digest_metrics
from rayline.training.observer import IterationHistory

if TYPE_CHECKING:
    import pandas as pd
    from ray.train import RunConfig, ScalingConfig

__all__ = ["TorchFramework"]

MODEL_FILE = "model.pt"
_INSTALL_HINT = "install the torch extra: pip install 'rayline[torch]'"


def _require_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise InvalidSpecError(
            "framework", [f"framework 'torch' needs PyTorch; {_INSTALL_HINT}"]
        ) from None
    return torch


def _build_mlp(inputs: int, hidden: list[int], outputs: int) -> Any:
    torch = _require_torch()
    layers: list[Any] = []
    width = inputs
    for size in hidden:
        layers += [torch.nn.Linear(width, size), torch.nn.ReLU()]
        width = size
    layers.append(torch.nn.Linear(width, outputs))
    return torch.nn.Sequential(*layers)


def _outputs(config: LoopConfig) -> int:
    return config.num_classes if config.task == "classification" else 1


def _train_loop(raw: dict[str, Any]) -> IterationHistory:
    """The per-worker loop: standardised batches -> DDP model -> checkpoint every k epochs.

    Returns each epoch's mean training loss on this worker's shard (the loss curve).
    """
    import ray.train
    import ray.train.torch
    import torch

    config = LoopConfig.from_dict(raw)
    params = config.hyperparameters
    torch.manual_seed(config.seed)
    model = _build_mlp(len(config.features), list(params["hidden_sizes"]), _outputs(config))
    optimizer = torch.optim.Adam(
        model.parameters(), lr=params["lr"], weight_decay=params["weight_decay"]
    )
    start = _restore(model, optimizer)
    model = ray.train.torch.prepare_model(model)
    scale = _Scaling(config)
    loss_fn = torch.nn.CrossEntropyLoss() if config.task == "classification" else torch.nn.MSELoss()
    shard = worker_shard(raw, "train")
    rank = ray.train.get_context().get_world_rank()
    if rank == 0:
        workers = ray.train.get_context().get_world_size()
        log(f"torch: epochs {start + 1}..{params['epochs']} on {workers} workers")
    history: IterationHistory = []
    for epoch in range(start, int(params["epochs"])):
        total, count = 0.0, 0
        for batch in shard.iter_torch_batches(
            batch_size=int(params["batch_size"]),
            dtypes=torch.float32,
            # Rows arrive in source order (the split needs no shuffle): mix them locally.
            local_shuffle_buffer_size=max(1024, 8 * int(params["batch_size"])),
            local_shuffle_seed=config.seed + epoch,
        ):
            features, labels = scale.batch(batch)
            optimizer.zero_grad()
            loss = loss_fn(
                model(features).squeeze(-1) if config.task == "regression" else model(features),
                labels,
            )
            loss.backward()
            optimizer.step()
            total, count = total + float(loss) * len(labels), count + len(labels)
        done = epoch + 1
        history.append((done, {"train-loss": total / max(count, 1)}))
        if done % config.checkpoint_every == 0 or done == int(params["epochs"]):
            _report(model, optimizer, done, start, total / max(count, 1), config, rank)
    return history


class _Scaling:
    """Standardise features (and a regression target) with the driver's statistics."""

    def __init__(self, config: LoopConfig) -> None:
        import torch

        stats = config.preprocessing
        self._torch = torch
        self._config = config
        self._mean = torch.tensor(stats["feature_mean"], dtype=torch.float32)
        self._std = torch.tensor(stats["feature_std"], dtype=torch.float32)
        self._y_mean = float(stats.get("target_mean", 0.0))
        self._y_std = float(stats.get("target_std", 1.0))

    def batch(self, batch: dict[str, Any]) -> tuple[Any, Any]:
        torch = self._torch
        features = torch.stack([batch[name] for name in self._config.features], dim=1)
        features = (features - self._mean) / self._std
        labels = batch[self._config.target]
        if self._config.task == "classification":
            return features, labels.long()
        return features, (labels - self._y_mean) / self._y_std


def _restore(model: Any, optimizer: Any) -> int:
    import ray.train
    import torch

    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        return 0
    with checkpoint.as_directory() as path:
        state = torch.load(Path(path, MODEL_FILE), weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if ray.train.get_context().get_world_rank() == 0:
        log(f"torch: resuming from checkpoint at epoch {state['epoch']}")
    return int(state["epoch"])


def _stats(config: LoopConfig, means: list[Any], stds: list[Any]) -> dict[str, Any]:
    """The scaling statistics ``model.pt`` keeps; a constant column is scaled by 1."""
    mean = [float(m) for m in means]
    std = [float(s) or 1.0 for s in stds]
    stats: dict[str, Any] = {
        "feature_mean": mean[: len(config.features)],
        "feature_std": std[: len(config.features)],
    }
    if config.task == "regression":
        stats["target_mean"], stats["target_std"] = mean[-1], std[-1]
    return stats


def _report(
    model: Any, optimizer: Any, epoch: int, start: int, loss: float, config: LoopConfig, rank: int
) -> None:
    import ray.train
    import torch

    metrics: dict[str, Any] = {"iteration": epoch, "resumed_from": start, "train-loss": loss}
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = None
        if rank == 0:
            torch.save(_model_state(model, optimizer, epoch, config), Path(tmp, MODEL_FILE))
            metrics |= model_digest_metrics(Path(tmp), MODEL_FILE)
            checkpoint = ray.train.Checkpoint.from_directory(tmp)
        ray.train.report(metrics, checkpoint=checkpoint)
    if rank == 0:
        log(f"torch: checkpoint at epoch {epoch}, train loss {loss:.4f}")


def _model_state(model: Any, optimizer: Any, epoch: int, config: LoopConfig) -> dict[str, Any]:
    """What ``model.pt`` holds: weights, optimizer, epoch and the scaling statistics."""
    inner = model.module if hasattr(model, "module") else model
    return {
        "model": inner.state_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": epoch,
        "preprocessing": config.preprocessing,
        "hidden_sizes": list(config.hyperparameters["hidden_sizes"]),
    }


def _fit_local(
    config: LoopConfig, train: pd.DataFrame, model_path: Path, on_iteration: IterationCallback
) -> int:
    """The same model, loss, optimizer and scaling as :func:`_train_loop`, on one process."""
    torch = _require_torch()
    params = config.hyperparameters
    torch.manual_seed(config.seed)
    torch.set_num_threads(max(1, int(config.cpus_per_worker)))
    model = _build_mlp(len(config.features), list(params["hidden_sizes"]), _outputs(config))
    optimizer = torch.optim.Adam(
        model.parameters(), lr=params["lr"], weight_decay=params["weight_decay"]
    )
    stats = config.preprocessing
    features = (train[config.features].to_numpy(np.float64) - stats["feature_mean"]) / np.asarray(
        stats["feature_std"]
    )
    x = torch.tensor(features, dtype=torch.float32)
    if config.task == "classification":
        y = torch.tensor(train[config.target].to_numpy(np.int64))
        loss_fn: Any = torch.nn.CrossEntropyLoss()
    else:
        scaled = (train[config.target].to_numpy(np.float64) - stats["target_mean"]) / stats[
            "target_std"
        ]
        y = torch.tensor(scaled, dtype=torch.float32)
        loss_fn = torch.nn.MSELoss()
    epochs, size = int(params["epochs"]), int(params["batch_size"])
    generator = torch.Generator().manual_seed(config.seed)
    log(f"torch: epochs 1..{epochs} in process")
    for epoch in range(epochs):
        total = 0.0
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), size):
            rows = order[start : start + size]
            optimizer.zero_grad()
            out = model(x[rows])
            loss = loss_fn(out.squeeze(-1) if config.task == "regression" else out, y[rows])
            loss.backward()
            optimizer.step()
            total += float(loss) * len(rows)
        on_iteration(epoch + 1, {"train-loss": total / max(len(x), 1)})  # every epoch
    torch.save(_model_state(model, optimizer, epochs, config), model_path)
    return epochs


class _MLPScorer:
    def __init__(self, model: Any, state: dict[str, Any], config: LoopConfig) -> None:
        self._model = model
        self._config = config
        stats = state["preprocessing"]
        self._mean = np.asarray(stats["feature_mean"])
        self._std = np.asarray(stats["feature_std"])
        self._y = (float(stats.get("target_mean", 0.0)), float(stats.get("target_std", 1.0)))

    def scores(self, features: np.ndarray) -> np.ndarray:
        import torch

        scaled = torch.tensor((features - self._mean) / self._std, dtype=torch.float32)
        with torch.no_grad():
            out = self._model(scaled)
        if self._config.task == "classification":
            return np.asarray(torch.softmax(out, dim=1).numpy(), dtype=np.float64)
        return np.asarray(out.squeeze(-1).numpy(), dtype=np.float64) * self._y[1] + self._y[0]


class TorchFramework(Framework):
    """A PyTorch MLP (hidden_sizes, epochs, batch_size, lr, weight_decay)."""

    name = "torch"
    model_file = MODEL_FILE

    def preflight(self, config: LoopConfig, sample: pd.DataFrame) -> None:
        """Check that torch is installed; the hyperparameters were typed by the spec."""
        _require_torch()

    def preprocessing(self, config: LoopConfig, train: Any) -> dict[str, Any]:
        """Mean and standard deviation of each feature (and a regression target).

        ``train`` is a pandas frame (in process) or a Ray Dataset (Ray Train).
        """
        import pandas as pd

        columns = list(config.features)
        if config.task == "regression":
            columns.append(config.target)
        if isinstance(train, pd.DataFrame):
            frame = train[columns].astype("float64")
            return _stats(config, frame.mean().tolist(), frame.std(ddof=0).fillna(0.0).tolist())
        means = (
            train.mean(columns)
            if len(columns) > 1
            else {f"mean({columns[0]})": train.mean(columns[0])}
        )
        stds = (
            train.std(columns, ddof=0)
            if len(columns) > 1
            else {f"std({columns[0]})": train.std(columns[0], ddof=0)}
        )
        return _stats(
            config, [means[f"mean({c})"] for c in columns], [stds[f"std({c})"] for c in columns]
        )

    def make_trainer(
        self,
        config: LoopConfig,
        *,
        scaling: ScalingConfig,
        run_config: RunConfig,
        shards: Shards,
    ) -> Trainer:
        """A ``TorchTrainer`` (gloo on CPUs) running :func:`_train_loop` on every worker."""
        from ray.train.torch import TorchTrainer

        return TorchTrainer(
            _train_loop,  # type: ignore[arg-type]  # rank 0's return value is Result.return_value
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
        """Mini-batch Adam over the shuffled training rows, ``cpus_per_worker`` threads."""
        return _fit_local(config, train, model_path, on_iteration)

    def load(self, model_path: Path, config: LoopConfig) -> _MLPScorer:
        """Load ``model.pt`` (a state dict and the scaling statistics)."""
        torch = _require_torch()
        state = torch.load(model_path, weights_only=True, map_location="cpu")
        model = _build_mlp(len(config.features), list(state["hidden_sizes"]), _outputs(config))
        model.load_state_dict(state["model"])
        model.eval()
        return _MLPScorer(model, state, config)
