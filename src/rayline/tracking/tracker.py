"""One training run as one MLflow run: params, tags, per-iteration metrics, model, registry.

:func:`open_tracker` checks MLflow before training and returns a
:class:`MlflowTracker`, or a :class:`NullTracker` when tracking is off (or
unusable and not required). The tracker is the run's
:class:`~rayline.training.observer.TrainingObserver`; after Rayline registered the
version, :meth:`MlflowTracker.register` creates the matching MLflow model version
and :meth:`MlflowTracker.finish` ends the run.

Metrics go out through ``MlflowClient.log_batch``: iterations are buffered and sent
at most every ``flush_seconds`` (and in batches of at most 1000, MLflow's limit),
so a run of hundreds of rounds costs a few requests. Once the run has started,
an MLflow failure never fails training: the tracker records it (``failure``),
warns once and stops tracking, and the Rayline version is registered anyway.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rayline.tracking.connect import (
    display_uri,
    ensure_experiment,
    ensure_registered_model,
    explain,
    open_client,
)
from rayline.tracking.errors import TrackingUnavailableError
from rayline.tracking.settings import TrackingSettings

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    from rayline.training.artifacts import ModelBundle

__all__ = ["MlflowTracker", "NullTracker", "Tracker", "open_tracker"]

logger = logging.getLogger(__name__)

_MAX_METRICS = 1000  # MLflow's limit per log_batch
_MAX_PARAMS = 100  # MLflow's limit of params (and of tags) per log_batch
_MAX_PARAM_VALUE = 6000
_LINEAGE_TAGS = ("dataset_uri", "dataset_sha256", "dataset_rows", "code_version", "run_name")


class NullTracker:
    """Tracking off: records nothing. ``failure`` says why when MLflow was unusable."""

    run_id: str | None = None
    location: str | None = None

    def __init__(self, failure: str | None = None) -> None:
        self.failure = failure

    def log_run(self, params: dict[str, Any], lineage: dict[str, Any]) -> None:
        """Ignore the run's parameters."""

    def on_iteration(self, step: int, metrics: dict[str, float]) -> None:
        """Ignore an iteration."""

    def log_model(self, directory: Path, bundle: ModelBundle) -> None:
        """Ignore the model."""

    def register(self, *, name: str, version: int, version_id: str, artifact_uri: str) -> None:
        """Ignore the registration."""

    def finish(self, *, succeeded: bool) -> None:
        """Nothing to end."""


class MlflowTracker:
    """An open MLflow run (see the module docstring)."""

    def __init__(self, client: MlflowClient, settings: TrackingSettings, run_id: str) -> None:
        self._client = client
        self._settings = settings
        self.run_id: str | None = run_id
        self.failure: str | None = None
        self.location: str | None = f"{display_uri(settings.tracking_uri)} run {run_id}"
        self._pending: list[Metric] = []
        self._last_flush = time.monotonic()
        self._last_step = 0
        self._model_id: str | None = None

    @classmethod
    def start(
        cls, settings: TrackingSettings, *, model_name: str, run_name: str, tags: dict[str, str]
    ) -> MlflowTracker:
        """Check MLflow and open the run.

        Raises:
            TrackingUnavailableError: Unreachable, refused credentials, a refused name.
        """
        import mlflow
        from mlflow.exceptions import MlflowException

        client = open_client(settings)
        experiment_id = ensure_experiment(client, settings)
        # Logged models go to the process-wide experiment, not the run's: point it there.
        mlflow.set_experiment(experiment_id=experiment_id)
        ensure_registered_model(client, settings, model_name)
        try:
            run = client.create_run(experiment_id, run_name=run_name, tags=tags)
        except MlflowException as err:
            raise explain(err, settings, f"creating run {run_name!r}") from None
        return cls(client, settings, run.info.run_id)

    def log_run(self, params: dict[str, Any], lineage: dict[str, Any]) -> None:
        """Log params and the lineage tags (dataset URI and hash, code version)."""
        from mlflow.entities import Param, RunTag

        entries = [Param(k, str(v)[:_MAX_PARAM_VALUE]) for k, v in sorted(params.items())]
        tags = [RunTag(f"rayline.{k}", str(lineage[k])) for k in _LINEAGE_TAGS if k in lineage]
        self._guard(lambda: self._send(params=entries, tags=tags), "logging params")

    def on_iteration(self, step: int, metrics: dict[str, float]) -> None:
        """Buffer one iteration's metrics; send the buffer when it is due."""
        from mlflow.entities import Metric

        if self.failure is not None:
            return
        now = int(time.time() * 1000)
        self._pending.extend(Metric(k, float(v), now, step) for k, v in metrics.items())
        self._last_step = max(self._last_step, step)
        if (
            len(self._pending) >= _MAX_METRICS
            or time.monotonic() - self._last_flush >= self._settings.flush_seconds
        ):
            self._guard(self.flush, "logging metrics")

    def flush(self) -> None:
        """Send the buffered metrics now."""
        while self._pending:
            batch, self._pending = self._pending[:_MAX_METRICS], self._pending[_MAX_METRICS:]
            self._send(metrics=batch)
        self._last_flush = time.monotonic()

    def log_model(self, directory: Path, bundle: ModelBundle) -> None:
        """Send the last iterations and the final metrics, then log the model."""
        from mlflow.entities import Metric

        from rayline.tracking.models import log_bundle_model

        now = int(time.time() * 1000)
        step = self._last_step
        self._pending.extend(Metric(k, float(v), now, step) for k, v in bundle.metrics.items())
        self._guard(self.flush, "logging metrics")

        def log() -> None:
            assert self.run_id is not None
            self._model_id = log_bundle_model(directory, bundle, run_id=self.run_id).model_id

        self._guard(log, "logging the model")

    def register(self, *, name: str, version: int, version_id: str, artifact_uri: str) -> None:
        """Create the MLflow model version of Rayline's ``name`` version ``version``."""
        if self._model_id is None:
            return
        tags = {
            "rayline.version": str(version),
            "rayline.version_id": version_id,
            "rayline.artifact_uri": artifact_uri,
        }

        def create() -> None:
            created = self._client.create_model_version(
                name,
                source=f"models:/{self._model_id}",
                run_id=self.run_id,
                tags=tags,
                model_id=self._model_id,
            )
            self._client.set_tag(str(self.run_id), "rayline.version", str(version))
            self.location = f"{self.location}, registered model {name} version {created.version}"

        self._guard(create, "registering the model version")

    def finish(self, *, succeeded: bool) -> None:
        """End the run (FINISHED or FAILED)."""
        self._guard(self.flush, "logging metrics")
        status = "FINISHED" if succeeded else "FAILED"
        if self.run_id is not None:
            run_id = self.run_id
            self._guard(lambda: self._client.set_terminated(run_id, status), "ending the run")

    def _send(self, **batch: Any) -> None:
        assert self.run_id is not None
        if "params" in batch or "tags" in batch:
            params, tags = batch.get("params", []), batch.get("tags", [])
            for i in range(0, max(len(params), len(tags)), _MAX_PARAMS):
                self._client.log_batch(
                    self.run_id,
                    params=params[i : i + _MAX_PARAMS],
                    tags=tags[i : i + _MAX_PARAMS],
                    synchronous=True,
                )
        if batch.get("metrics"):
            self._client.log_batch(self.run_id, metrics=batch["metrics"], synchronous=True)

    def _guard(self, action: Any, doing: str) -> None:
        """Run ``action``; on failure record it, warn once, and stop tracking this run."""
        if self.failure is not None:
            return
        try:
            action()
        except Exception as err:  # tracking must never fail a trained run
            self.failure = str(explain(err, self._settings, doing))
            self._pending.clear()
            logger.warning("tracking failed, the run goes on untracked: %s", self.failure)


Tracker = MlflowTracker | NullTracker


def open_tracker(
    *,
    model_name: str,
    run_name: str,
    workflow_run_id: int | None = None,
    code_version: str | None = None,
    settings: TrackingSettings | None = None,
) -> Tracker:
    """The run's tracker: MLflow when configured and usable, else a :class:`NullTracker`.

    Raises:
        TrackingUnavailableError: MLflow is unusable and ``RAYLINE_MLFLOW_REQUIRED``
            is true; nothing has been trained.
    """
    settings = settings or TrackingSettings()
    if not settings.enabled:
        return NullTracker()
    tags = {"rayline.model": model_name, "rayline.run_name": run_name}
    if workflow_run_id is not None:
        tags["rayline.workflow_run_id"] = str(workflow_run_id)
    if code_version:
        tags["rayline.code_version"] = code_version
        commit = code_version.partition("+g")[2]
        if commit:
            tags["mlflow.source.git.commit"] = commit
    try:
        return MlflowTracker.start(settings, model_name=model_name, run_name=run_name, tags=tags)
    except TrackingUnavailableError as err:
        if settings.required:
            raise TrackingUnavailableError(
                f"{err}; training did not start (RAYLINE_MLFLOW_REQUIRED=false trains untracked)"
            ) from None
        logger.warning("tracking is off for this run: %s", err)
        return NullTracker(failure=str(err))
