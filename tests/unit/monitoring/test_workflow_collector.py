"""Workflow and training series computed from the metadata store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import Engine, create_engine, update
from sqlalchemy.orm import sessionmaker

from rayline.metadata.db import create_engine_for
from rayline.metadata.enums import WorkflowStatus
from rayline.metadata.migrate import upgrade
from rayline.metadata.models import WorkflowStep
from rayline.metadata.registry import ModelRegistry
from rayline.metadata.workflows import finish_run, finish_step, start_run, start_step
from rayline.monitoring.workflows import WorkflowCollector, histogram

DAG = "rayline_train_and_serve"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'rayline.db'}"
    upgrade(url)
    engine = create_engine_for(url)
    yield engine
    engine.dispose()


def scrape(engine: Engine) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(WorkflowCollector(sessionmaker(engine)))
    return registry


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_runs_steps_durations_and_model_metrics(engine: Engine) -> None:
    run = start_run(engine, dag_id=DAG, external_run_id="r1")
    train = start_step(engine, run.id, name="train")
    finish_step(engine, train.id, status=WorkflowStatus.SUCCESS)
    deploy = start_step(engine, run.id, name="deploy")
    finish_step(engine, deploy.id, status=WorkflowStatus.FAILED, error="boom")
    start_step(engine, run.id, name="deploy", try_number=2)  # still running
    finish_run(engine, run.id, status=WorkflowStatus.FAILED)
    assert train.started_at is not None
    with engine.begin() as connection:  # make the train step take 42 s
        connection.execute(
            update(WorkflowStep)
            .where(WorkflowStep.id == train.id)
            .values(finished_at=train.started_at + timedelta(seconds=42))
        )
    ModelRegistry().register_version(
        engine,
        name="iris",
        artifact_uri="file:///tmp/iris",
        sha256="0" * 64,
        metrics={"accuracy": 0.97, "note": "text is skipped"},
    )
    registry = scrape(engine)
    assert value(registry, "rayline_workflow_metrics_up") == 1
    assert value(registry, "rayline_workflow_runs", dag_id=DAG, status="failed") == 1
    step = {"dag_id": DAG, "step": "deploy"}
    assert value(registry, "rayline_workflow_steps", **step, status="failed") == 1
    assert value(registry, "rayline_workflow_steps", **step, status="running") == 1
    train_labels = {"dag_id": DAG, "step": "train", "status": "success"}
    assert value(registry, "rayline_workflow_step_duration_seconds_count", **train_labels) == 1
    buckets = "rayline_workflow_step_duration_seconds_bucket"
    assert value(registry, buckets, **train_labels, le="30.0") == 0
    assert value(registry, buckets, **train_labels, le="60.0") == 1
    assert value(registry, "rayline_workflow_step_duration_seconds_sum", **train_labels) == 42
    assert (
        value(registry, "rayline_workflow_run_duration_seconds_count", dag_id=DAG, status="failed")
        == 1
    )
    assert (
        value(
            registry, "rayline_model_version_metric", model="iris", version="1", metric="accuracy"
        )
        == 0.97
    )
    assert b'metric="note"' not in generate_latest(registry)


def test_histogram_buckets_are_cumulative() -> None:
    family = histogram("h", "doc", ["k"], [(("a",), 0.5), (("a",), 3.0), (("a",), 99999.0)])
    samples = {(s.name, s.labels.get("le")): s.value for s in family.samples}
    assert samples[("h_bucket", "1.0")] == 1
    assert samples[("h_bucket", "5.0")] == 2
    assert samples[("h_bucket", "+Inf")] == 3
    assert samples[("h_count", None)] == 3
    assert samples[("h_sum", None)] == 100002.5


def test_store_failure_reports_up_zero_instead_of_failing_the_scrape(tmp_path: Path) -> None:
    broken = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")  # no tables
    registry = scrape(broken)
    assert value(registry, "rayline_workflow_metrics_up") == 0
    broken.dispose()
