"""One training run inside a Ray job: check, train, evaluate, publish, register.

Order matters for the guarantees: every check (spec, resources, data,
hyperparameters) comes before training; the model version is published to the
artifact store atomically and registered in the metadata store last, so a
failure anywhere leaves no model version behind.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from rayline.training.artifacts import (
    ModelBundle,
    load_model_dir,
    write_artifacts,
    write_input_example,
)
from rayline.training.errors import DatasetError, TrainingFailedError
from rayline.training.filesystems import checkpoint_location
from rayline.training.frameworks import Framework, LoopConfig, get_framework
from rayline.training.frameworks.base import Shards, log
from rayline.training.lineage import code_version
from rayline.training.metrics import evaluate
from rayline.training.prepare import PreparedData, inspect_dataset, prepare_data
from rayline.training.resources import check_capacity

if TYPE_CHECKING:
    import pandas as pd
    import ray.data
    from ray.train import Result

    from rayline.config import Settings
    from rayline.storage import ArtifactStore, VersionRef
    from rayline.training.spec import TrainingSpec

__all__ = ["TrainingOutcome", "alive_node_resources", "run_training"]

logger = logging.getLogger(__name__)

# Metrics are computed in the driver on at most this many rows of each split.
EVAL_MAX_ROWS = 200_000
_EXAMPLE_ROWS = 5


@dataclass(frozen=True)
class TrainingOutcome:
    """What a successful run produced, as printed for the CLI and Airflow."""

    name: str
    version: int
    version_id: str
    artifact_uri: str
    manifest_sha256: str
    framework: str
    metrics: dict[str, float]
    params: dict[str, Any]
    dataset_uri: str
    dataset_sha256: str
    code_version: str
    workflow_run_id: int | None
    run_name: str
    resumed_from: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def alive_node_resources() -> list[dict[str, float]]:
    """Total resources of each alive node of the connected Ray cluster."""
    import ray

    nodes = ray.nodes()  # type: ignore[no-untyped-call]
    return [dict(node["Resources"]) for node in nodes if node.get("Alive")]


def run_training(
    spec: TrainingSpec,
    *,
    settings: Settings,
    run_name: str,
    workflow_run_id: int | None = None,
    store: ArtifactStore | None = None,
    connect: Callable[[], None] | None = None,
) -> TrainingOutcome:
    """Train ``spec`` on the Ray cluster and register the new model version.

    Args:
        spec: The validated spec.
        settings: Artifact store, S3 and metadata store settings.
        run_name: Ray Train run name; a run re-submitted with the same name
            resumes from that run's last checkpoint.
        workflow_run_id: The workflow run this belongs to (lineage), if any.
        store: The artifact store (default: ``settings.artifact_uri``).
        connect: Connects to the Ray cluster; called once the dataset has passed
            the checks that need no cluster (default: already connected).

    Returns:
        The registered version, its metrics and lineage.

    Raises:
        InvalidSpecError, DatasetError, InsufficientResourcesError: Before training.
        TrainingFailedError: Training failed after the allowed retries.
    """
    from rayline.storage import open_store

    framework = get_framework(spec.framework)
    started = time.monotonic()
    files = inspect_dataset(spec, settings)  # bad data fails here, before Ray
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
    store = store or open_store(settings=settings)
    reported = result.metrics or {}
    lineage = {
        "dataset_uri": spec.dataset,
        "dataset_sha256": data.dataset_sha256,
        "dataset_rows": data.rows,
        "code_version": code_version(),
        "workflow_run_id": workflow_run_id,
        "run_name": run_name,
        "resumed_from": int(reported.get("resumed_from", 0)),
        "iterations": int(reported.get("iteration", 0)),
    }
    params = {
        **spec.resolved_hyperparameters(),
        "workers": spec.workers,
        "cpus_per_worker": spec.cpus_per_worker,
        "gpus_per_worker": spec.gpus_per_worker,
        "validation_split": spec.validation_split,
        "seed": spec.seed,
    }
    bundle = ModelBundle(
        name=spec.name,
        framework=spec.framework,
        model_file=framework.model_file,
        signature=data.signature,
        loop=loop,
        params=params,
        spec=spec.model_dump(mode="json"),
        lineage=lineage,
    )
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rayline-train-") as tmp:
        ref, metrics = _build_and_publish(Path(tmp), store, result, bundle, data)
    outcome = _register(spec, settings, store, ref, bundle, metrics, workflow_run_id)
    log(f"evaluated, published and registered in {time.monotonic() - started:.1f} s")
    _discard_checkpoints(settings, run_name)
    return outcome


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


def _build_and_publish(
    directory: Path,
    store: ArtifactStore,
    result: Result,
    bundle: ModelBundle,
    data: PreparedData,
) -> tuple[VersionRef, dict[str, float]]:
    """Write the version's files, score them with the real loader, publish atomically."""
    assert result.checkpoint is not None
    with result.checkpoint.as_directory() as checkpoint_dir:
        shutil.copy2(Path(checkpoint_dir, bundle.model_file), directory / bundle.model_file)
    write_artifacts(directory, bundle)
    predictor = load_model_dir(directory)  # the same code path serving will use
    metrics: dict[str, float] = {}
    for split, dataset in (("train", data.train), ("validation", data.validation)):
        frame = dataset.limit(EVAL_MAX_ROWS).to_pandas()
        labels = frame[bundle.loop.target].to_numpy()
        metrics |= evaluate(bundle.loop.task, predictor.scores(frame), labels, prefix=split)
    bundle.metrics = metrics
    write_artifacts(directory, bundle)
    example = cast("pd.DataFrame", data.validation.take_batch(_EXAMPLE_ROWS, batch_format="pandas"))
    rows = example[bundle.signature.feature_names].to_dict(orient="records")
    write_input_example(directory, rows, predictor.predict(rows))
    metadata = {"framework": bundle.framework, "task": bundle.signature.task, **bundle.lineage}
    return store.publish_version(bundle.name, directory, metadata=metadata), metrics


def _register(
    spec: TrainingSpec,
    settings: Settings,
    store: ArtifactStore,
    ref: VersionRef,
    bundle: ModelBundle,
    metrics: dict[str, float],
    workflow_run_id: int | None,
) -> TrainingOutcome:
    from rayline.metadata import ModelRegistry, create_engine_for
    from rayline.storage import StorageError

    engine = create_engine_for(settings.database_url)
    try:
        row = ModelRegistry().register_version(
            engine,
            name=spec.name,
            artifact_uri=ref.uri,
            sha256=ref.manifest_sha256,
            framework=spec.framework,
            task=spec.task,
            metrics=metrics,
            params=bundle.params,
            signature=bundle.signature.to_dict(),
            workflow_run_id=workflow_run_id,
            dataset_uri=spec.dataset,
            dataset_sha256=bundle.lineage["dataset_sha256"],
            code_version=bundle.lineage["code_version"],
        )
    except BaseException:
        # Unregistered, the published files would be an orphan nobody lists: remove them.
        try:
            store.delete_prefix(f"{ref.name}/{ref.version_id}")
        except StorageError as cleanup:
            logger.warning("could not remove unregistered version %s: %s", ref.uri, cleanup)
        raise
    finally:
        engine.dispose()
    return TrainingOutcome(
        name=spec.name,
        version=row.version,
        version_id=ref.version_id,
        artifact_uri=ref.uri,
        manifest_sha256=ref.manifest_sha256,
        framework=spec.framework,
        metrics=metrics,
        params=bundle.params,
        dataset_uri=spec.dataset,
        dataset_sha256=bundle.lineage["dataset_sha256"],
        code_version=bundle.lineage["code_version"],
        workflow_run_id=workflow_run_id,
        run_name=bundle.lineage["run_name"],
        resumed_from=bundle.lineage["resumed_from"],
    )


def _discard_checkpoints(settings: Settings, run_name: str) -> None:
    # The version is published: the run's checkpoints have served their purpose.
    filesystem, path = checkpoint_location(settings)
    try:
        filesystem.delete_dir(f"{path}/{run_name}")
    except OSError as err:
        logger.warning("could not delete the checkpoints of run %s: %s", run_name, err)


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1][:400] if lines else type(err).__name__
