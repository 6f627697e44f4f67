"""Record every DAG run and task try in the metadata store, from Airflow callbacks.

One mechanism: task callbacks. Put `STEP_CALLBACKS` in a DAG's ``default_args``
and every task writes a workflow step when it starts (``on_execute_callback``,
idempotent, as it also fires when a deferred task resumes) and when it ends
(success, failure, or failure before a retry). A finished step is linked to the
cluster, model version and deployment its XCom value names, when the metadata
store knows them. `run_failed` is the DAG's ``on_failure_callback``, and a
last task calls `finish_run` so the run's record ends with the run.

Airflow logs (and otherwise ignores) an exception raised by a callback: a
metadata store that is down never fails the work, but the task log shows it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from rayline.config import get_settings
from rayline.metadata.db import create_engine_for, session_scope
from rayline.metadata.enums import WorkflowStatus
from rayline.metadata.models import Cluster, Deployment, ModelVersion, WorkflowRun, WorkflowStep
from rayline.metadata.workflows import finish_run as _finish_run
from rayline.metadata.workflows import finish_step, start_run, start_step

__all__ = [
    "STEP_CALLBACKS",
    "finish_run",
    "run_failed",
    "step_failed",
    "step_started",
    "step_succeeded",
    "workflow_run_id",
]

_MAX_DETAIL_CHARS = 16_000
_MAX_ERROR_CHARS = 4_000
_FINAL = (WorkflowStatus.SUCCESS, WorkflowStatus.FAILED)


@lru_cache(maxsize=4)
def _engine_for(url: str) -> Engine:
    return create_engine_for(url)


def _engine() -> Engine:
    return _engine_for(get_settings().database_url)


def step_started(context: Mapping[str, Any]) -> None:
    """``on_execute_callback``: record the try as running (once, even across deferrals)."""
    ti = context["ti"]
    with session_scope(_engine()) as session:
        run = _current_run(session, context)
        _step(session, run.id, ti, details=_step_details(context))


def step_succeeded(context: Mapping[str, Any]) -> None:
    """``on_success_callback``: finish the step and link what its XCom value names."""
    ti = context["ti"]
    outcome = ti.xcom_pull(task_ids=ti.task_id)
    _finish_step(context, WorkflowStatus.SUCCESS, outcome=outcome)


def step_failed(context: Mapping[str, Any]) -> None:
    """``on_failure_callback`` and ``on_retry_callback``: finish the step as failed."""
    error = context.get("exception")
    _finish_step(context, WorkflowStatus.FAILED, error=_error_text(error))


#: Put these in ``default_args`` to record every task of a DAG.
STEP_CALLBACKS: dict[str, Callable[[Mapping[str, Any]], None]] = {
    "on_execute_callback": step_started,
    "on_success_callback": step_succeeded,
    "on_failure_callback": step_failed,
    "on_retry_callback": step_failed,
}


def run_failed(context: Mapping[str, Any]) -> None:
    """The DAG's ``on_failure_callback``: mark the run failed with the failing step's error."""
    dag_id = context["dag"].dag_id
    run_id = context["run_id"]
    ti = context.get("ti")
    with session_scope(_engine()) as session:
        run = _find_run(session, dag_id, run_id)
        if run is None:
            run = start_run(session, dag_id=dag_id, external_run_id=run_id)
        error = f"the run failed ({context.get('reason', 'task_failure')})"
        if ti is not None:
            step = _latest_step(session, run.id, ti.task_id)
            detail = f": {step.error}" if step is not None and step.error else ""
            error = f"task {ti.task_id} failed{detail}"
        _finish_run(session, run.id, status=WorkflowStatus.FAILED, error=error)


def finish_run(
    context: Mapping[str, Any], *, status: WorkflowStatus = WorkflowStatus.SUCCESS
) -> dict[str, Any]:
    """Mark the current DAG run finished; return its record with per-step timings.

    Call it from the DAG's last task.

    Returns:
        ``{"workflow_run_id", "dag_id", "run_id", "status", "steps": [{"name",
        "try_number", "status", "seconds", "cluster_id", ...}]}``.
    """
    with session_scope(_engine()) as session:
        run = _current_run(session, context)
        _finish_run(session, run.id, status=status)
        steps = session.scalars(
            select(WorkflowStep).where(WorkflowStep.run_id == run.id).order_by(WorkflowStep.id)
        ).all()
        return {
            "workflow_run_id": run.id,
            "dag_id": run.dag_id,
            "run_id": run.external_run_id,
            "status": status.value,
            "steps": [_step_summary(s) for s in steps],
        }


def workflow_run_id(dag_id: str, run_id: str) -> int | None:
    """The metadata store's id of a DAG run's record (for a job's lineage), if recorded."""
    with session_scope(_engine()) as session:
        run = _find_run(session, dag_id, run_id)
        return run.id if run is not None else None


# ---------------------------------------------------------------- internals
def _current_run(session: Session, context: Mapping[str, Any]) -> WorkflowRun:
    """The run record of the context's DAG run; (re)started when missing or already finished."""
    ti = context["ti"]
    run = _find_run(session, ti.dag_id, ti.run_id)
    if run is None or run.status in _FINAL:
        # New, or a finished run cleared and running again.
        run = start_run(
            session, dag_id=ti.dag_id, external_run_id=ti.run_id, params=_params(context)
        )
    return run


def _find_run(session: Session, dag_id: str, run_id: str) -> WorkflowRun | None:
    return session.scalars(
        select(WorkflowRun).where(
            WorkflowRun.dag_id == dag_id, WorkflowRun.external_run_id == run_id
        )
    ).one_or_none()


def _step(session: Session, run_id: int, ti: Any, *, details: dict[str, Any]) -> WorkflowStep:
    step = session.scalars(
        select(WorkflowStep).where(
            WorkflowStep.run_id == run_id,
            WorkflowStep.name == ti.task_id,
            WorkflowStep.try_number == int(ti.try_number),
        )
    ).one_or_none()
    if step is not None:
        return step
    return start_step(
        session, run_id, name=ti.task_id, try_number=int(ti.try_number), details=details
    )


def _latest_step(session: Session, run_id: int, name: str) -> WorkflowStep | None:
    return session.scalars(
        select(WorkflowStep)
        .where(WorkflowStep.run_id == run_id, WorkflowStep.name == name)
        .order_by(WorkflowStep.try_number.desc())
        .limit(1)
    ).one_or_none()


def _finish_step(
    context: Mapping[str, Any],
    status: WorkflowStatus,
    *,
    outcome: Any = None,
    error: str | None = None,
) -> None:
    ti = context["ti"]
    with session_scope(_engine()) as session:
        run = _find_run(session, ti.dag_id, ti.run_id) or _current_run(session, context)
        # A task that failed before its execute callback (e.g. a template error) has no step yet.
        step = _step(session, run.id, ti, details=_step_details(context))
        links = _links(session, outcome)
        details = {"outcome": outcome} if _small_json(outcome) else {}
        finish_step(session, step.id, status=status, error=error, details=details, **links)


def _links(session: Session, outcome: Any) -> dict[str, Any]:
    """The cluster, model version and deployment an outcome names, when they exist here."""
    if not isinstance(outcome, Mapping):
        return {}
    result = outcome.get("result")
    merged: dict[str, Any] = dict(result) if isinstance(result, Mapping) else {}
    merged.update((k, v) for k, v in outcome.items() if v is not None)
    links: dict[str, Any] = {}
    cluster_id = merged.get("cluster_id")
    if isinstance(cluster_id, str) and session.get(Cluster, cluster_id) is not None:
        links["cluster_id"] = cluster_id
    version_id = merged.get("model_version_id")
    if not isinstance(version_id, int):
        # "model" in a deploy job's result, "name" in a training job's.
        name = merged.get("model") or merged.get("model_name") or merged.get("name")
        version_id = _model_version_id(session, name, merged.get("version"))

    if version_id is not None and session.get(ModelVersion, version_id) is not None:
        links["model_version_id"] = version_id
    deployment_id = merged.get("deployment_id")
    if isinstance(deployment_id, str) and session.get(Deployment, deployment_id) is not None:
        links["deployment_id"] = deployment_id
    return links


def _model_version_id(session: Session, name: Any, version: Any) -> int | None:
    if not isinstance(name, str) or not str(version or "").isdigit():
        return None
    return session.scalars(
        select(ModelVersion.id).where(
            ModelVersion.model_name == name, ModelVersion.version == int(version)
        )
    ).one_or_none()


def _step_details(context: Mapping[str, Any]) -> dict[str, Any]:
    ti = context["ti"]
    task = context.get("task")
    details: dict[str, Any] = {"airflow_task_id": ti.task_id}
    if task is not None:
        details["operator"] = type(task).__name__
    map_index = getattr(ti, "map_index", -1)
    if map_index is not None and map_index >= 0:
        details["map_index"] = map_index
    return details


def _step_summary(step: WorkflowStep) -> dict[str, Any]:
    seconds = None
    if step.started_at is not None and step.finished_at is not None:
        seconds = round((step.finished_at - step.started_at).total_seconds(), 3)
    return {
        "name": step.name,
        "try_number": step.try_number,
        "status": step.status.value,
        "started_at": _iso(step.started_at),
        "finished_at": _iso(step.finished_at),
        "seconds": seconds,
        "cluster_id": step.cluster_id,
        "model_version_id": step.model_version_id,
        "deployment_id": step.deployment_id,
        "error": step.error,
    }


def _params(context: Mapping[str, Any]) -> dict[str, Any]:
    params = context.get("params") or {}
    return {str(k): _jsonable(v) for k, v in dict(params).items()}


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _small_json(value: Any) -> bool:
    if value is None:
        return False
    try:
        return len(json.dumps(value)) <= _MAX_DETAIL_CHARS
    except (TypeError, ValueError):
        return False


def _error_text(error: Any) -> str | None:
    if error is None:
        return None
    text = str(error) or type(error).__name__
    return text[:_MAX_ERROR_CHARS]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
