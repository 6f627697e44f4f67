"""The multi-worker runtime: Ray Data reads, a Ray Train worker group trains.

Each worker gets its materialized shard of the split; Ray Train keeps
checkpoints beside the artifact store (:func:`~rayline.training.filesystems.checkpoint_location`),
so a restarted worker group, or a job re-submitted with the same run name,
resumes from the last one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from rayline.training.errors import DatasetError, TrainingFailedError
from rayline.training.filesystems import checkpoint_location
from rayline.training.frameworks import LoopConfig
from rayline.training.frameworks.base import IterationCallback, Shards, log
from rayline.training.model_files import copy_checkpointed_model
from rayline.training.observer import replay_history
from rayline.training.prepare import PreparedData, prepare_data
from rayline.training.resources import check_capacity
from rayline.training.trained import EVAL_MAX_ROWS, Trained

if TYPE_CHECKING:
    import pandas as pd
    import ray.data
    from ray.train import Result

    from rayline.config import Settings
    from rayline.training.datasets import DatasetFiles
    from rayline.training.frameworks import Framework
    from rayline.training.spec import TrainingSpec

__all__ = ["alive_node_resources", "discard_checkpoints", "train_on_ray"]

logger = logging.getLogger(__name__)


def alive_node_resources() -> list[dict[str, float]]:
    """Total resources of each alive node of the connected Ray cluster."""
    import ray

    nodes = ray.nodes()  # type: ignore[no-untyped-call]
    return [dict(node["Resources"]) for node in nodes if node.get("Alive")]


def train_on_ray(
    spec: TrainingSpec,
    framework: Framework,
    settings: Settings,
    *,
    files: DatasetFiles | None,
    model_path: Path,
    run_name: str,
    started: float,
    connect: Callable[[], None] | None = None,
    on_iteration: IterationCallback | None = None,
) -> Trained:
    """Connect, check capacity, prepare the data with Ray Data, train with Ray Train.

    Args:
        spec: The spec.
        framework: Its framework.
        settings: Stores and S3 settings.
        files: The dataset's files, from :func:`~rayline.training.prepare.inspect_dataset`.
        model_path: Where the final checkpoint's model file is copied.
        run_name: Ray Train run name; the same name resumes from its last checkpoint.
        started: ``time.monotonic()`` when the job started checking the data.
        connect: Connects to the Ray cluster (default: already connected).
        on_iteration: Given each iteration rank 0's loop returned, after training.

    Raises:
        InsufficientResourcesError, DatasetError, InvalidSpecError: Before training.
        TrainingFailedError: Training failed after the allowed retries.
    """
    if connect is not None:
        connect()
    check_capacity(spec, alive_node_resources())
    data = prepare_data(spec, settings, files=files)
    loop = _loop_config(spec, data, framework)
    framework.preflight(
        loop, cast("pd.DataFrame", data.train.take_batch(64, batch_format="pandas"))
    )
    log(
        f"data ready in {time.monotonic() - started:.1f} s: {data.rows} rows, "
        f"{len(loop.features)} features, {data.train.count()} train / "
        f"{data.validation.count()} validation"
    )
    started = time.monotonic()
    result = _fit(spec, framework, loop, data, settings, run_name)
    log(f"trained in {time.monotonic() - started:.1f} s")
    if on_iteration is not None:  # rank 0's loop returns its per-iteration history
        replay_history(on_iteration, getattr(result, "return_value", None))
    assert result.checkpoint is not None
    reported = result.metrics or {}
    # The digest travelled with the report, apart from the checkpoint's files:
    # a model file changed in the checkpoint storage is refused before it is loaded.
    with result.checkpoint.as_directory() as checkpoint_dir:
        model_sha256 = copy_checkpointed_model(
            Path(checkpoint_dir), framework.model_file, model_path, reported
        )
    return Trained(
        runtime="ray_train",
        model_path=model_path,
        model_sha256=model_sha256,
        signature=data.signature,
        loop=loop,
        train=data.train.limit(EVAL_MAX_ROWS).to_pandas(),
        validation=data.validation.limit(EVAL_MAX_ROWS).to_pandas(),
        dataset_sha256=data.dataset_sha256,
        rows=data.rows,
        iterations=int(reported.get("iteration", 0)),
        resumed_from=int(reported.get("resumed_from", 0)),
    )


def _loop_config(spec: TrainingSpec, data: PreparedData, framework: Framework) -> LoopConfig:
    loop = LoopConfig(
        features=data.signature.feature_names,
        target=spec.target,
        task=spec.task,
        num_classes=len(data.signature.classes or ()),
        hyperparameters=spec.resolved_hyperparameters(),
        checkpoint_every=spec.checkpoint_every,
        seed=spec.seed,
        cpus_per_worker=spec.cpus_per_worker,
        use_gpu=spec.gpus_per_worker > 0,
    )
    stats = framework.preprocessing(loop, data.train)
    return LoopConfig(**{**loop.to_dict(), "preprocessing": stats})


def _fit(
    spec: TrainingSpec,
    framework: Framework,
    loop: LoopConfig,
    data: PreparedData,
    settings: Settings,
    run_name: str,
) -> Result:
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.v2.api.exceptions import TrainingFailedError as RayTrainingFailedError

    shards: Shards = {
        "train": _split(data.train, spec.workers, "training", spec),
        "validation": _split(data.validation, spec.workers, "validation", spec),
    }
    filesystem, path = checkpoint_location(settings)
    resources: dict[str, float] = {"CPU": spec.cpus_per_worker}
    if spec.gpus_per_worker:
        resources["GPU"] = spec.gpus_per_worker
    trainer = framework.make_trainer(
        loop,
        scaling=ScalingConfig(
            num_workers=spec.workers,
            use_gpu=spec.gpus_per_worker > 0,
            resources_per_worker=resources,
        ),
        run_config=RunConfig(
            name=run_name,
            storage_path=path,
            storage_filesystem=filesystem,
            failure_config=FailureConfig(max_failures=spec.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
        ),
        shards=shards,
    )
    try:
        result = trainer.fit()
    except RayTrainingFailedError as err:
        raise TrainingFailedError(
            f"training {spec.name} failed after {spec.max_failures} allowed retries: "
            f"{_first_line(err)}; see the job logs"
        ) from err
    if result.checkpoint is None:
        raise TrainingFailedError(f"training {spec.name} finished without reporting a model")
    return result


def _split(dataset: ray.data.Dataset, workers: int, what: str, spec: TrainingSpec) -> list[Any]:
    """``workers`` materialized shards of ``dataset``, sizes differing by at most one row."""
    rows = dataset.count()
    if rows < workers:
        raise DatasetError(
            f"dataset {spec.dataset} has {rows} {what} row(s), fewer than the {workers} "
            "workers asked for; add rows or lower `workers`"
        )
    if workers == 1:
        return [dataset]
    return list(dataset.split_at_indices([rows * i // workers for i in range(1, workers)]))


def discard_checkpoints(settings: Settings, run_name: str) -> None:
    """Delete a run's checkpoints once its version is published (failures only logged)."""
    filesystem, path = checkpoint_location(settings)
    try:
        filesystem.delete_dir(f"{path}/{run_name}")
    except OSError as err:
        logger.warning("could not delete the checkpoints of run %s: %s", run_name, err)


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1][:400] if lines else type(err).__name__
