"""Run the train → serve DAG in this process and collect what it produced.

`rayline demo` and ``benchmarks/workflow.py`` use this: Airflow is configured
under ``$RAYLINE_HOME/airflow`` (SQLite), the ``rayline_train_and_serve`` DAG
runs with ``dag.test()``, and the result is read back from our metadata store:
the run record with its steps, the deployment and the model version it serves.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from rayline.config import Settings
from rayline.metadata.db import create_engine_for, session_scope
from rayline.metadata.models import Deployment, ModelVersion, WorkflowRun, WorkflowStep
from rayline.orchestration.progress import StepEvent, StepFollower, run_record

__all__ = ["DAG_ID", "WorkflowResult", "job_seconds", "prepare_airflow", "run_train_and_serve"]

DAG_ID = "rayline_train_and_serve"


@dataclass
class WorkflowResult:
    """What one embedded run of the DAG did.

    Attributes:
        state: Airflow's final state of the DAG run (``success`` or ``failed``).
        triggered_at: when the run was asked for.
        ended_at: when ``dag.test()`` returned.
        run: our record of the run, with its ``steps`` loaded (None if nothing ran).
        deployment: the deployment the run made, when it served the model.
        version: the model version it serves.
    """

    state: str
    triggered_at: datetime
    ended_at: datetime
    run: WorkflowRun | None
    deployment: Deployment | None
    version: ModelVersion | None

    @property
    def succeeded(self) -> bool:
        """True when the DAG run succeeded and a served model came out of it."""
        return self.state == "success" and self.deployment is not None

    def steps(self) -> list[WorkflowStep]:
        """The step tries, in the order they were recorded."""
        return sorted(self.run.steps, key=lambda s: s.id) if self.run is not None else []


def prepare_airflow(home: Path) -> Any:
    """Configure Airflow under ``home`` (before it is imported), migrate it, return the DAG."""
    from rayline.orchestration.embedded import configure_airflow, migrate_airflow_db

    configure_airflow(home)
    # dag.test() talks to Airflow's execution API through Starlette's test client,
    # which warns about its own httpx use: nothing a user can act on.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    # Task logs go to files under `home`; callers show our step progress instead.
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    logging.getLogger("airflow").setLevel(logging.WARNING)
    migrate_airflow_db()
    from rayline.orchestration.dags.rayline_train_and_serve import dag

    return dag


def run_train_and_serve(
    settings: Settings,
    dag: Any,
    *,
    run_conf: dict[str, Any],
    report: Callable[[StepEvent], None] | None = None,
) -> WorkflowResult:
    """Run the DAG once with ``run_conf``; ``report`` hears each step start and end.

    Call `prepare_airflow` first (once per process).
    """
    from rayline.orchestration.embedded import run_dag

    engine = create_engine_for(settings.database_url)
    try:
        triggered = datetime.now(UTC)
        if report is not None:
            with StepFollower(engine, DAG_ID, triggered, report):
                dag_run = run_dag(dag, run_conf=run_conf)
        else:
            dag_run = run_dag(dag, run_conf=run_conf)
        ended = datetime.now(UTC)
        record = run_record(engine, DAG_ID, dag_run.run_id)
        deployment, version = _served(engine, record) if record is not None else (None, None)
        return WorkflowResult(str(dag_run.state), triggered, ended, record, deployment, version)
    finally:
        engine.dispose()


def job_seconds(step: WorkflowStep) -> float | None:
    """The Ray job's own run time of a job step (train, deploy), as its outcome recorded it."""
    seconds = _outcome(step).get("job_seconds")
    return float(seconds) if isinstance(seconds, int | float) else None


def _outcome(step: WorkflowStep) -> dict[str, Any]:
    outcome = (step.details or {}).get("outcome")
    return outcome if isinstance(outcome, dict) else {}


def _served(engine: Engine, record: WorkflowRun) -> tuple[Deployment | None, ModelVersion | None]:
    """The deployment the run's deploy step made, and the model version it serves."""
    linked = [s.deployment_id for s in record.steps if s.deployment_id is not None]
    named = [_outcome(s).get("deployment_id") for s in record.steps if s.name == "deploy"]
    deployment_id = next((d for d in [*linked, *named] if isinstance(d, str)), None)
    if deployment_id is None:
        return None, None
    with session_scope(engine) as session:
        deployment = session.get(Deployment, deployment_id)
        if deployment is None:
            return None, None
        version = session.scalars(
            select(ModelVersion).where(
                ModelVersion.model_name == deployment.model_name,
                ModelVersion.version == deployment.model_version,
            )
        ).one_or_none()
        session.expunge_all()
    return deployment, version
