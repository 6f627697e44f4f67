"""Recording callbacks: one run row per DAG run, one step row per task try, linked to results."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from rayline.metadata.db import session_scope
from rayline.metadata.enums import ClusterPurpose, WorkflowStatus
from rayline.metadata.models import Cluster, WorkflowRun, WorkflowStep
from rayline.metadata.registry import ModelRegistry
from rayline.orchestration import recording
from tests.unit.orchestration.fakes import DAG_ID, RUN_ID, FakeTI


class Task:
    """Only its type name is recorded."""


def _context(ti: FakeTI, **extra: Any) -> dict[str, Any]:
    return {"ti": ti, "task": Task(), "params": {"training": {"name": "iris"}}, **extra}


def _rows(engine: Engine) -> tuple[list[WorkflowRun], list[WorkflowStep]]:
    with session_scope(engine) as session:
        runs = list(session.scalars(select(WorkflowRun)))
        steps = list(session.scalars(select(WorkflowStep).order_by(WorkflowStep.id)))
        session.expunge_all()
    return runs, steps


def test_a_started_task_creates_the_run_and_a_running_step_once(engine: Engine) -> None:
    ti = FakeTI("train")
    recording.step_started(_context(ti))
    recording.step_started(_context(ti))  # resumed after a deferral: same step

    (run,), (step,) = _rows(engine)
    assert (run.dag_id, run.external_run_id, run.status) == (DAG_ID, RUN_ID, WorkflowStatus.RUNNING)
    assert run.params == {"training": {"name": "iris"}}
    assert (step.name, step.try_number, step.status) == ("train", 1, WorkflowStatus.RUNNING)
    assert step.details == {"airflow_task_id": "train", "operator": "Task"}


def test_success_links_the_cluster_and_model_version_its_outcome_names(engine: Engine) -> None:
    with session_scope(engine) as session:
        session.add(Cluster(id="rc-1", name="c", purpose=ClusterPurpose.TRAINING, backend="local"))
    version = ModelRegistry().register_version(
        engine, name="iris", artifact_uri="file:///m", sha256="0" * 64
    )
    ti = FakeTI("train")
    # As a training job reports it: the model's "name" and "version".
    outcome = {
        "cluster_id": "rc-1",
        "status": "SUCCEEDED",
        "result": {"name": "iris", "version": version.version, "version_id": "v-abc"},
    }
    ti.xcom_push("return_value", outcome)

    recording.step_started(_context(ti))
    recording.step_succeeded(_context(ti))

    _, (step,) = _rows(engine)
    assert step.status == WorkflowStatus.SUCCESS
    assert step.finished_at is not None and step.started_at is not None
    assert step.cluster_id == "rc-1"
    assert step.model_version_id == version.id
    assert step.details["outcome"] == outcome


def test_unknown_links_stay_in_the_details_only(engine: Engine) -> None:
    ti = FakeTI("deploy")
    ti.xcom_push(
        "return_value",
        {"cluster_id": "rc-elsewhere", "deployment_id": "dep-x", "model": "nope", "version": 1},
    )

    recording.step_succeeded(_context(ti))  # no start recorded: the step is made now

    _, (step,) = _rows(engine)
    assert (step.cluster_id, step.deployment_id, step.model_version_id) == (None, None, None)
    assert step.details["outcome"]["cluster_id"] == "rc-elsewhere"


def test_failures_and_retries_are_steps_of_their_own(engine: Engine) -> None:
    first = FakeTI("train", try_number=1)
    recording.step_started(_context(first))
    recording.step_failed(_context(first, exception=RuntimeError("head died")))
    second = FakeTI("train", try_number=2)
    recording.step_started(_context(second))
    recording.step_failed(_context(second, exception=RuntimeError("x" * 10_000)))

    _, steps = _rows(engine)
    assert [(s.try_number, s.status) for s in steps] == [
        (1, WorkflowStatus.FAILED),
        (2, WorkflowStatus.FAILED),
    ]
    assert steps[0].error == "head died"
    assert len(steps[1].error or "") == 4000


def test_run_failed_names_the_failing_task_and_its_error(engine: Engine) -> None:
    ti = FakeTI("train")
    recording.step_started(_context(ti))
    recording.step_failed(_context(ti, exception=RuntimeError("Ray job ended FAILED: no rows")))

    class Dag:
        dag_id = DAG_ID

    recording.run_failed({"dag": Dag(), "run_id": RUN_ID, "ti": ti, "reason": "task_failure"})

    (run,), _ = _rows(engine)
    assert run.status == WorkflowStatus.FAILED
    assert run.error == "task train failed: Ray job ended FAILED: no rows"
    assert run.finished_at is not None


def test_finish_run_closes_the_run_and_returns_step_timings(engine: Engine) -> None:
    for task_id in ("create_cluster", "train"):
        ti = FakeTI(task_id)
        recording.step_started(_context(ti))
        recording.step_succeeded(_context(ti))

    summary = recording.finish_run(_context(FakeTI("record_run")))

    (run,), _ = _rows(engine)
    assert run.status == WorkflowStatus.SUCCESS
    assert summary["workflow_run_id"] == run.id and summary["status"] == "success"
    assert [s["name"] for s in summary["steps"]] == ["create_cluster", "train"]
    assert all(s["seconds"] is not None and s["seconds"] >= 0 for s in summary["steps"])


def test_workflow_run_id_finds_the_recorded_run(engine: Engine) -> None:
    assert recording.workflow_run_id(DAG_ID, RUN_ID) is None
    recording.step_started(_context(FakeTI("train")))
    (run,), _ = _rows(engine)
    assert recording.workflow_run_id(DAG_ID, RUN_ID) == run.id


def test_a_finished_run_that_runs_again_is_running_again(engine: Engine) -> None:
    recording.step_started(_context(FakeTI("train")))
    recording.finish_run(_context(FakeTI("record_run")))

    recording.step_started(_context(FakeTI("train", try_number=2)))  # cleared and re-run

    (run,), _ = _rows(engine)
    assert run.status == WorkflowStatus.RUNNING and run.finished_at is None
