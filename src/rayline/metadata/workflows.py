"""Record workflow runs (one per Airflow DAG run) and their steps (task tries)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from rayline.metadata.db import insert_unless_exists, open_session
from rayline.metadata.enums import WorkflowStatus
from rayline.metadata.errors import WorkflowRunNotFoundError, WorkflowStepNotFoundError
from rayline.metadata.models import WorkflowRun, WorkflowStep
from rayline.metadata.types import utcnow

__all__ = ["finish_run", "finish_step", "start_run", "start_step"]

_FINAL = (WorkflowStatus.SUCCESS, WorkflowStatus.FAILED)


def start_run(
    bind: Session | Engine,
    *,
    dag_id: str,
    external_run_id: str,
    params: dict[str, Any] | None = None,
) -> WorkflowRun:
    """Mark the run ``(dag_id, external_run_id)`` running, creating it if new.

    Idempotent: an Airflow task retried or a DAG run cleared and re-run finds
    its existing row, which is reset to running.

    Args:
        bind: session to work in, or engine to open and commit one.
        dag_id: the Airflow DAG id.
        external_run_id: the Airflow run id.
        params: the run's parameters; kept as they were when None.
    """
    with open_session(bind) as session:
        insert_unless_exists(
            session,
            WorkflowRun,
            ["dag_id", "external_run_id"],
            dag_id=dag_id,
            external_run_id=external_run_id,
        )
        run = session.scalars(
            select(WorkflowRun)
            .where(WorkflowRun.dag_id == dag_id, WorkflowRun.external_run_id == external_run_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
        run.status = WorkflowStatus.RUNNING
        run.started_at = utcnow()
        run.finished_at = None
        run.error = None
        if params is not None:
            run.params = params
        return run


def finish_run(
    bind: Session | Engine, run_id: int, *, status: WorkflowStatus, error: str | None = None
) -> WorkflowRun:
    """Mark run ``run_id`` finished with ``status`` (success or failed).

    Raises:
        ValueError: ``status`` is not final.
        WorkflowRunNotFoundError: no run has this id.
    """
    _require_final(status)
    with open_session(bind) as session:
        run = session.get(WorkflowRun, run_id, with_for_update=True, populate_existing=True)
        if run is None:
            raise WorkflowRunNotFoundError(run_id)
        run.status = status
        run.finished_at = utcnow()
        run.error = error
        return run


def start_step(
    bind: Session | Engine,
    run_id: int,
    *,
    name: str,
    try_number: int = 1,
    details: dict[str, Any] | None = None,
) -> WorkflowStep:
    """Record that try ``try_number`` of step ``name`` of run ``run_id`` started.

    Raises:
        WorkflowRunNotFoundError: no run has this id.
    """
    with open_session(bind) as session:
        if session.get(WorkflowRun, run_id) is None:
            raise WorkflowRunNotFoundError(run_id)
        step = WorkflowStep(
            run_id=run_id,
            name=name,
            try_number=try_number,
            status=WorkflowStatus.RUNNING,
            started_at=utcnow(),
            details=details or {},
        )
        session.add(step)
        return step


def finish_step(
    bind: Session | Engine,
    step_id: int,
    *,
    status: WorkflowStatus,
    error: str | None = None,
    details: dict[str, Any] | None = None,
    cluster_id: str | None = None,
    model_version_id: int | None = None,
    deployment_id: str | None = None,
) -> WorkflowStep:
    """Mark step ``step_id`` finished and link what it produced or used.

    ``details`` is merged into the step's details; a link left as None keeps
    its current value.

    Raises:
        ValueError: ``status`` is not final.
        WorkflowStepNotFoundError: no step has this id.
    """
    _require_final(status)
    with open_session(bind) as session:
        step = session.get(WorkflowStep, step_id, with_for_update=True, populate_existing=True)
        if step is None:
            raise WorkflowStepNotFoundError(step_id)
        step.status = status
        step.finished_at = utcnow()
        step.error = error
        if details:
            step.details = {**step.details, **details}  # a new dict, so the change is seen
        if cluster_id is not None:
            step.cluster_id = cluster_id
        if model_version_id is not None:
            step.model_version_id = model_version_id
        if deployment_id is not None:
            step.deployment_id = deployment_id
        return step


def _require_final(status: WorkflowStatus) -> None:
    if status not in _FINAL:
        raise ValueError(
            f"a run or step finishes as {WorkflowStatus.SUCCESS.value} or "
            f"{WorkflowStatus.FAILED.value}, not {status.value}"
        )
