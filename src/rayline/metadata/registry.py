"""The model registry: versions numbered 1, 2, 3... per model, and aliases.

Version numbers are unique and gap-free even when many processes register the
same model at once: the model's row is created if missing, then locked
(``SELECT ... FOR UPDATE`` on Postgres; on SQLite every transaction already
holds the write lock from ``BEGIN IMMEDIATE``) and its counter incremented in
the same transaction that inserts the version. A rolled-back registration rolls
its increment back with it, so no number is skipped.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from rayline.metadata.db import insert_unless_exists, open_session
from rayline.metadata.enums import ModelVersionStatus
from rayline.metadata.errors import (
    AliasNotFoundError,
    ModelNotFoundError,
    ModelVersionNotFoundError,
)
from rayline.metadata.models import ModelAlias, ModelVersion, RegisteredModel

__all__ = ["ModelRegistry"]


class ModelRegistry:
    """Register, look up and alias model versions.

    Stateless: each method takes the session to work in (the caller commits)
    or an engine (the method commits its own transaction).

    Example:
        >>> registry = ModelRegistry()  # doctest: +SKIP
        >>> mv = registry.register_version(engine, name="iris", artifact_uri=uri, sha256=digest)
        >>> registry.set_alias(engine, name="iris", alias="champion", version=mv.version)
    """

    def register_version(
        self,
        bind: Session | Engine,
        *,
        name: str,
        artifact_uri: str,
        sha256: str,
        framework: str | None = None,
        task: str | None = None,
        metrics: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        signature: dict[str, Any] | None = None,
        workflow_run_id: int | None = None,
        dataset_uri: str | None = None,
        dataset_sha256: str | None = None,
        code_version: str | None = None,
        mlflow_run_id: str | None = None,
    ) -> ModelVersion:
        """Register the next version of model ``name``, creating the model if new.

        Args:
            bind: session to work in, or engine to open and commit one.
            name: model name.
            artifact_uri: where the artifacts are stored (``s3://`` or ``file://``).
            sha256: SHA-256 of the artifact manifest.
            framework: e.g. ``xgboost``.
            task: e.g. ``classification``.
            metrics: evaluation metrics.
            params: training hyper-parameters.
            signature: input/output schema.
            workflow_run_id: the workflow run that trained it (lineage).
            dataset_uri: the training data (lineage).
            dataset_sha256: digest of the training data (lineage).
            code_version: e.g. a git commit or package version (lineage).
            mlflow_run_id: the MLflow run, when tracking is on (lineage).

        Returns:
            The new version; ``version`` is the model's previous latest plus one.
        """
        with open_session(bind) as session:
            model = _lock_model(session, name)
            model.latest_version += 1
            version = ModelVersion(
                model_name=name,
                version=model.latest_version,
                artifact_uri=artifact_uri,
                sha256=sha256,
                framework=framework,
                task=task,
                metrics=metrics or {},
                params=params or {},
                signature=signature,
                workflow_run_id=workflow_run_id,
                dataset_uri=dataset_uri,
                dataset_sha256=dataset_sha256,
                code_version=code_version,
                mlflow_run_id=mlflow_run_id,
            )
            session.add(version)
            return version

    def get_version(
        self, bind: Session | Engine, *, name: str, version: int | None = None
    ) -> ModelVersion:
        """Return version ``version`` of model ``name``, or its latest READY one.

        Raises:
            ModelNotFoundError: no model has this name.
            ModelVersionNotFoundError: the model has no such version.
        """
        query = select(ModelVersion).where(ModelVersion.model_name == name)
        if version is None:
            query = query.where(ModelVersion.status == ModelVersionStatus.READY)
            query = query.order_by(ModelVersion.version.desc()).limit(1)
        else:
            query = query.where(ModelVersion.version == version)
        with open_session(bind) as session:
            found = session.scalars(query).first()
            if found is None:
                _require_model(session, name)
                raise ModelVersionNotFoundError(name, version)
            return found

    def list_versions(self, bind: Session | Engine, *, name: str) -> list[ModelVersion]:
        """Return every version of model ``name``, oldest first.

        Raises:
            ModelNotFoundError: no model has this name.
        """
        with open_session(bind) as session:
            _require_model(session, name)
            query = (
                select(ModelVersion)
                .where(ModelVersion.model_name == name)
                .order_by(ModelVersion.version)
            )
            return list(session.scalars(query))

    def set_mlflow_run_id(
        self, bind: Session | Engine, *, name: str, version: int, run_id: str | None
    ) -> ModelVersion:
        """Record the MLflow run that tracks version ``version`` of ``name`` (lineage).

        The only field of a version that changes after registration: tracking can
        catch up later (``rayline models sync-mlflow``) when MLflow was down.

        Raises:
            ModelNotFoundError: no model has this name.
            ModelVersionNotFoundError: the model has no such version.
        """
        with open_session(bind) as session:
            row = self.get_version(session, name=name, version=version)
            row.mlflow_run_id = run_id
            return row

    def set_alias(
        self, bind: Session | Engine, *, name: str, alias: str, version: int
    ) -> ModelAlias:
        """Point ``alias`` of model ``name`` at ``version``, creating or moving it.

        Raises:
            ModelNotFoundError: no model has this name.
            ModelVersionNotFoundError: the model has no such version.
        """
        with open_session(bind) as session:
            self.get_version(session, name=name, version=version)
            insert_unless_exists(
                session,
                ModelAlias,
                ["model_name", "alias"],
                model_name=name,
                alias=alias,
                version=version,
            )
            row = session.scalars(
                select(ModelAlias)
                .where(ModelAlias.model_name == name, ModelAlias.alias == alias)
                .with_for_update()
                .execution_options(populate_existing=True)
            ).one()
            row.version = version
            return row

    def resolve_alias(self, bind: Session | Engine, *, name: str, alias: str) -> ModelVersion:
        """Return the version that ``alias`` of model ``name`` points at.

        Raises:
            ModelNotFoundError: no model has this name.
            AliasNotFoundError: the model has no such alias.
        """
        query = (
            select(ModelVersion)
            .join(
                ModelAlias,
                (ModelAlias.model_name == ModelVersion.model_name)
                & (ModelAlias.version == ModelVersion.version),
            )
            .where(ModelAlias.model_name == name, ModelAlias.alias == alias)
        )
        with open_session(bind) as session:
            found = session.scalars(query).first()
            if found is None:
                _require_model(session, name)
                raise AliasNotFoundError(name, alias)
            return found


def _lock_model(session: Session, name: str) -> RegisteredModel:
    """Create model ``name`` if missing, then lock its row for this transaction."""
    insert_unless_exists(session, RegisteredModel, ["name"], name=name)
    return session.scalars(
        select(RegisteredModel)
        .where(RegisteredModel.name == name)
        .with_for_update()
        # Re-read the counter even if this session has the row cached.
        .execution_options(populate_existing=True)
    ).one()


def _require_model(session: Session, name: str) -> None:
    query = select(RegisteredModel.id).where(RegisteredModel.name == name)
    if session.scalars(query).first() is None:
        raise ModelNotFoundError(name)
