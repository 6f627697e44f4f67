"""What every successful run of rayline_train_and_serve must leave behind."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from rayline.config import get_settings
from rayline.metadata.db import create_engine_for, session_scope
from rayline.metadata.enums import WorkflowStatus
from rayline.metadata.models import WorkflowRun, WorkflowStep
from tests.integration.manager import ManagerProcess


def assert_served_run(manager: ManagerProcess, run: Any, model: str) -> None:
    """The run succeeded; training is gone, serving stays; records link every output.

    Exactly one live cluster (the serving one) backs the model's live endpoint;
    the run record succeeded, its train step names the registered model version,
    its deploy step the deployment on that cluster, and the check got predictions.
    """
    assert run.state == "success"
    live = [c for c in manager.client().list_clusters().data if not c.state.is_terminal()]
    assert [c.purpose for c in live] == ["serving"]  # training deleted, serving kept
    endpoints = manager.client().live_endpoints(model).data
    assert [e.cluster_id for e in endpoints] == [live[0].id]
    engine = create_engine_for(get_settings().database_url)
    try:
        with session_scope(engine) as session:
            record = session.scalars(
                select(WorkflowRun).where(WorkflowRun.external_run_id == run.run_id)
            ).one()
            steps: dict[str, WorkflowStep] = {}
            for step in session.scalars(
                select(WorkflowStep).where(WorkflowStep.run_id == record.id)
            ):
                if step.status == WorkflowStatus.SUCCESS:
                    steps[step.name] = step  # the try that succeeded
            assert record.status == WorkflowStatus.SUCCESS
            assert steps["train"].model_version_id is not None
            assert steps["deploy"].deployment_id is not None
            assert steps["deploy"].cluster_id == live[0].id
            assert steps["verify_endpoint"].details["outcome"]["predictions"]
    finally:
        engine.dispose()
