"""Catch MLflow up with Rayline's registry: ``rayline models sync-mlflow [NAME]``.

Rayline's metadata is the record; MLflow mirrors it. For each Rayline version
without an MLflow model version (tracking was off, or MLflow failed mid-run), the
sync makes one: it reuses the version's MLflow run when that run exists (and ends
it if it was left running), else creates a run from the stored params, final
metrics and lineage (per-iteration metrics of an untracked run are gone); it logs
the model from the version's published files, registers the model version with
its ``rayline.*`` tags and stores the run id in Rayline. Then ``live`` is set on
the version Rayline serves. Running it again changes nothing.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from sqlalchemy import Engine

from rayline.tracking.connect import ensure_experiment, ensure_registered_model, explain
from rayline.tracking.errors import TrackingError
from rayline.tracking.live import apply_live_alias, find_model_version, live_version
from rayline.tracking.settings import TrackingSettings

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from rayline.config import Settings
    from rayline.metadata import ModelVersion

__all__ = ["SyncItem", "sync_models"]

Action = Literal["created", "completed", "linked", "up to date", "alias set", "failed"]
_LINEAGE = ("dataset_uri", "dataset_sha256", "code_version")


@dataclass(frozen=True)
class SyncItem:
    """What the sync did for one version (or for a model's ``live`` alias)."""

    model: str
    version: int
    action: Action
    detail: str = ""
    kind: Literal["version", "alias"] = "version"


def sync_models(
    engine: Engine,
    names: Iterable[str],
    *,
    settings: Settings,
    tracking: TrackingSettings,
    client: MlflowClient,
    on_item: Callable[[SyncItem], None] = lambda item: None,
) -> list[SyncItem]:
    """Sync every version of each model in ``names``, then its ``live`` alias.

    A failure of one version is reported as a ``failed`` item and the sync goes on.

    Raises:
        TrackingUnavailableError: The experiment cannot be opened (nothing done).
    """
    import mlflow

    from rayline.metadata import ModelRegistry

    experiment_id = ensure_experiment(client, tracking)
    mlflow.set_experiment(experiment_id=experiment_id)  # where flavors put logged models
    done: list[SyncItem] = []

    def report(item: SyncItem) -> None:
        done.append(item)
        on_item(item)

    for name in names:
        ensure_registered_model(client, tracking, name)
        for row in ModelRegistry().list_versions(engine, name=name):
            try:
                report(_sync_version(engine, client, settings, experiment_id, row))
            except Exception as err:  # one broken version must not stop the others
                report(SyncItem(name, row.version, "failed", _reason(err, tracking)))
        serving = live_version(engine, name)
        if serving is not None:
            try:
                moved = apply_live_alias(client, name, serving)
                action: Action = "alias set" if moved else "up to date"
                report(SyncItem(name, serving, action, "", "alias"))
            except Exception as err:
                report(SyncItem(name, serving, "failed", _reason(err, tracking), "alias"))
    return done


def _sync_version(
    engine: Engine,
    client: MlflowClient,
    settings: Settings,
    experiment_id: str,
    row: ModelVersion,
) -> SyncItem:
    from rayline.metadata import ModelRegistry

    name, version = row.model_name, row.version
    existing = find_model_version(client, name, version)
    if existing is not None:
        if existing.run_id == row.mlflow_run_id:
            return SyncItem(name, version, "up to date", f"MLflow version {existing.version}")
        ModelRegistry().set_mlflow_run_id(
            engine, name=name, version=version, run_id=existing.run_id
        )
        return SyncItem(name, version, "linked", f"run {existing.run_id}")
    run_id, run_experiment, reused = _run_for(client, experiment_id, row)
    model_id = _logged_model(client, run_experiment, run_id) or _log_model(settings, row, run_id)
    created = client.create_model_version(
        name,
        source=f"models:/{model_id}",
        run_id=run_id,
        tags={
            "rayline.version": str(version),
            "rayline.version_id": row.artifact_uri.rstrip("/").rpartition("/")[2],
            "rayline.artifact_uri": row.artifact_uri,
        },
        model_id=model_id,
    )
    client.set_tag(run_id, "rayline.version", str(version))
    if client.get_run(run_id).info.status == "RUNNING":  # left open when MLflow went away
        client.set_terminated(run_id, "FINISHED")
    if row.mlflow_run_id != run_id:
        ModelRegistry().set_mlflow_run_id(engine, name=name, version=version, run_id=run_id)
    action: Action = "completed" if reused else "created"
    return SyncItem(name, version, action, f"MLflow version {created.version}, run {run_id}")


def _run_for(client: MlflowClient, experiment_id: str, row: ModelVersion) -> tuple[str, str, bool]:
    """The version's own MLflow run if MLflow has it, else a new run from the metadata.

    Returns:
        The run id, its experiment id, and whether it is the version's own run.
    """
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.exceptions import MlflowException

    if row.mlflow_run_id:
        try:
            run = client.get_run(row.mlflow_run_id)
            if run.info.lifecycle_stage != "deleted":
                return run.info.run_id, run.info.experiment_id, True
        except MlflowException as err:
            if getattr(err, "error_code", "") != "RESOURCE_DOES_NOT_EXIST":
                raise
    tags = {"rayline.model": row.model_name, "rayline.synced": "true"}
    if row.workflow_run_id is not None:
        tags["rayline.workflow_run_id"] = str(row.workflow_run_id)
    run = client.create_run(
        experiment_id, run_name=f"{row.model_name}-v{row.version}-sync", tags=tags
    )
    run_id = run.info.run_id
    stamp = int(row.created_at.timestamp() * 1000)
    params = [Param(k, str(v)[:6000]) for k, v in sorted(row.params.items())]
    for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
        client.log_batch(run_id, params=params[i : i + 100], synchronous=True)
    client.log_batch(
        run_id,
        metrics=[Metric(k, float(v), stamp, 0) for k, v in sorted(row.metrics.items())],
        tags=[RunTag(f"rayline.{k}", str(getattr(row, k))) for k in _LINEAGE if getattr(row, k)],
        synchronous=True,
    )
    return run_id, experiment_id, False


def _logged_model(client: MlflowClient, experiment_id: str, run_id: str) -> str | None:
    """The model a run already logged (MLflow failed only at registration), if any."""
    found = client.search_logged_models(
        experiment_ids=[experiment_id], filter_string=f"source_run_id = '{run_id}'"
    )
    return str(found[0].model_id) if found else None


def _log_model(settings: Settings, row: ModelVersion, run_id: str) -> str:
    """Fetch the published version, check it against its manifest, log it as run's model."""
    from rayline.storage import fetch_version, open_store
    from rayline.tracking.models import log_version_dir

    root, _, version_id = row.artifact_uri.rstrip("/").rpartition("/")
    store_uri = root.removesuffix(f"/{row.model_name}")
    with tempfile.TemporaryDirectory(prefix="rayline-sync-") as tmp:
        directory = Path(tmp, "version")
        fetch_version(
            open_store(store_uri, settings),
            row.model_name,
            version_id,
            directory,
            expected_manifest_sha256=row.sha256,
        )
        return str(log_version_dir(directory, run_id=run_id).model_id)


def _reason(err: Exception, tracking: TrackingSettings) -> str:
    if isinstance(err, TrackingError):
        return str(err)
    from mlflow.exceptions import MlflowException

    if isinstance(err, MlflowException):
        return str(explain(err, tracking, "syncing"))
    return f"{type(err).__name__}: {err}"
