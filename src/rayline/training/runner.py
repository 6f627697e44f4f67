"""One training run inside a Ray job: check, train, evaluate, publish, register.

Order matters for the guarantees: every check (spec, data, resources,
hyperparameters) comes before training; the model version is published to the
artifact store atomically and registered in the metadata store last, so a
failure anywhere leaves no model version behind.

Two runtimes train (:func:`choose_runtime`): one worker trains in this very
process (:mod:`rayline.training.inprocess`: pyarrow reads, no Ray at all);
several train on a Ray Train worker group fed by Ray Data
(:mod:`rayline.training.ray_runtime`). What follows training is common.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rayline.models import load_model_dir
from rayline.training.artifacts import ModelBundle, write_artifacts, write_input_example
from rayline.training.frameworks import get_framework
from rayline.training.frameworks.base import IterationCallback, log
from rayline.training.lineage import code_version
from rayline.training.metrics import evaluate
from rayline.training.observer import NULL_OBSERVER, TrainingObserver
from rayline.training.prepare import inspect_dataset
from rayline.training.resources import choose_runtime
from rayline.training.trained import Trained

if TYPE_CHECKING:
    from rayline.config import Settings
    from rayline.storage import ArtifactStore, VersionRef
    from rayline.training.spec import TrainingSpec

__all__ = ["TrainingOutcome", "choose_runtime", "run_training"]

logger = logging.getLogger(__name__)

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
    mlflow_run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def run_training(
    spec: TrainingSpec,
    *,
    settings: Settings,
    run_name: str,
    workflow_run_id: int | None = None,
    store: ArtifactStore | None = None,
    connect: Callable[[], None] | None = None,
    on_iteration: IterationCallback | None = None,
    observer: TrainingObserver = NULL_OBSERVER,
) -> TrainingOutcome:
    """Train ``spec`` and register the new model version.

    Args:
        spec: The validated spec.
        settings: Artifact store, S3 and metadata store settings.
        run_name: Run name; a multi-worker run re-submitted with the same name
            resumes from that run's last checkpoint.
        workflow_run_id: The workflow run this belongs to (lineage), if any.
        store: The artifact store (default: ``settings.artifact_uri``).
        connect: Connects to the Ray cluster; called only by the Ray Train
            runtime, once the dataset has passed the checks that need no
            cluster (default: already connected).
        on_iteration: Given each iteration's metrics by the in-process runtime.
        observer: Gets the params, per-iteration metrics and model (tracking);
            ``on_iteration`` defaults to its ``on_iteration``.

    Returns:
        The registered version, its metrics and lineage.

    Raises:
        InvalidSpecError, DatasetError, InsufficientResourcesError: Before training.
        TrainingFailedError: Training failed after the allowed retries.
    """
    from rayline.storage import open_store

    framework = get_framework(spec.framework)
    runtime = choose_runtime(spec)
    on_iteration = on_iteration or observer.on_iteration
    started = time.monotonic()
    files = inspect_dataset(spec, settings)  # bad data fails here, before any training
    with tempfile.TemporaryDirectory(prefix="rayline-train-") as tmp:
        directory = Path(tmp, "version")
        directory.mkdir()
        model_path = directory / framework.model_file
        if runtime == "in_process":
            from rayline.training.inprocess import train_in_process

            trained = train_in_process(
                spec, framework, settings, files=files, model_path=model_path,
                started=started, on_iteration=on_iteration,
            )  # fmt: skip
        else:
            from rayline.training.ray_runtime import train_on_ray

            trained = train_on_ray(
                spec, framework, settings, files=files, model_path=model_path,
                run_name=run_name, started=started, connect=connect,
                on_iteration=on_iteration,
            )  # fmt: skip
        started = time.monotonic()
        bundle = _bundle(spec, framework.model_file, trained, run_name, workflow_run_id)
        bundle.lineage["mlflow_run_id"] = observer.run_id
        observer.log_run(bundle.params, bundle.lineage)
        store = store or open_store(settings=settings)
        ref, metrics = _build_and_publish(directory, store, bundle, trained)
        observer.log_model(directory, bundle)
    outcome = _register(spec, settings, store, ref, bundle, metrics, workflow_run_id)
    log(f"evaluated, published and registered in {time.monotonic() - started:.1f} s")
    if runtime == "ray_train":
        from rayline.training.ray_runtime import discard_checkpoints

        discard_checkpoints(settings, run_name)  # the version is published: no longer needed
    return outcome


def _bundle(
    spec: TrainingSpec,
    model_file: str,
    trained: Trained,
    run_name: str,
    workflow_run_id: int | None,
) -> ModelBundle:
    lineage = {
        "dataset_uri": spec.dataset,
        "dataset_sha256": trained.dataset_sha256,
        "dataset_rows": trained.rows,
        "code_version": code_version(),
        "workflow_run_id": workflow_run_id,
        "run_name": run_name,
        "resumed_from": trained.resumed_from,
        "iterations": trained.iterations,
        "runtime": trained.runtime,
    }
    params = {
        **spec.resolved_hyperparameters(),
        "workers": spec.workers,
        "cpus_per_worker": spec.cpus_per_worker,
        "gpus_per_worker": spec.gpus_per_worker,
        "validation_split": spec.validation_split,
        "seed": spec.seed,
    }
    return ModelBundle(
        name=spec.name,
        framework=spec.framework,
        model_file=model_file,
        signature=trained.signature,
        loop=trained.loop,
        params=params,
        spec=spec.model_dump(mode="json"),
        lineage=lineage,
    )


def _build_and_publish(
    directory: Path, store: ArtifactStore, bundle: ModelBundle, trained: Trained
) -> tuple[VersionRef, dict[str, float]]:
    """Write the version's files beside the model, score them with the real loader, publish."""
    from rayline.storage import publish_version

    write_artifacts(directory, bundle)
    # The same code path serving will use; the model file must be the one trained.
    predictor = load_model_dir(directory, model_sha256=trained.model_sha256)
    metrics: dict[str, float] = {}
    for split, frame in (("train", trained.train), ("validation", trained.validation)):
        labels = frame[bundle.loop.target].to_numpy()
        metrics |= evaluate(bundle.loop.task, predictor.scores(frame), labels, prefix=split)
    bundle.metrics = metrics
    write_artifacts(directory, bundle)
    example = trained.validation.head(_EXAMPLE_ROWS)
    rows = example[bundle.signature.feature_names].to_dict(orient="records")
    write_input_example(directory, rows, predictor.predict(rows))
    metadata = {"framework": bundle.framework, "task": bundle.signature.task, **bundle.lineage}
    return publish_version(store, bundle.name, directory, metadata=metadata), metrics


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
            mlflow_run_id=bundle.lineage.get("mlflow_run_id"),
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
        mlflow_run_id=bundle.lineage.get("mlflow_run_id"),
    )
