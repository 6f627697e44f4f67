"""Tracked training jobs against the real MLflow server (Postgres store, S3 artifacts).

Each job runs on the training tests' Ray cluster through ``JobClient``, so the
tracking settings travel to the job the way they do in production.
"""

from __future__ import annotations

import secrets
import socket

import pytest
from mlflow import MlflowClient

from rayline.jobs.results import TrainResult
from rayline.metadata import ModelRegistry
from tests.integration.tracking.conftest import MlflowServer
from tests.integration.training.conftest import TrainingEnv
from tests.integration.training.helpers import (
    assert_failed_without_version,
    run_job,
    spec_for,
)

pytestmark = pytest.mark.integration

ROUNDS = 12


@pytest.fixture
def tracked(
    mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch
) -> tuple[MlflowClient, str]:
    """Tracking on, into a fresh experiment of the real server."""
    experiment = f"it-{secrets.token_hex(4)}"
    monkeypatch.setenv("RAYLINE_MLFLOW_TRACKING_URI", mlflow_server.url)
    monkeypatch.setenv("RAYLINE_MLFLOW_EXPERIMENT", experiment)
    monkeypatch.setenv("RAYLINE_MLFLOW_REQUIRED", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)  # for models:/ URIs here
    return MlflowClient(tracking_uri=mlflow_server.url), experiment


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def _check_version_lineage(
    env: TrainingEnv, client: MlflowClient, name: str, result: TrainResult
) -> str:
    """Rayline's version keeps the MLflow run; MLflow's version names Rayline's."""
    run_id = result.mlflow_run_id
    assert run_id
    row = ModelRegistry().get_version(env.engine, name=name, version=result.version)
    assert row.mlflow_run_id == run_id
    (version,) = client.search_model_versions(f"name = '{name}'")
    assert version.run_id == run_id
    assert version.tags["rayline.version"] == str(result.version)
    assert version.tags["rayline.version_id"] == result.version_id
    assert version.tags["rayline.artifact_uri"] == result.artifact_uri
    return run_id


def test_xgboost_on_two_workers_is_one_run_with_a_metric_per_round(
    training_env: TrainingEnv, tracked: tuple[MlflowClient, str]
) -> None:
    client, experiment = tracked
    name = _name("mlxgb")
    spec = spec_for(
        name,
        "sklearn:iris",
        target="target",
        workers=2,
        hyperparameters={"num_boost_round": ROUNDS, "max_depth": 3},
    )
    outcome = run_job(training_env, spec, workflow_run_id=None)
    assert outcome.status == "SUCCEEDED", outcome.logs[-3000:]
    assert outcome.result is not None
    run_id = _check_version_lineage(training_env, client, name, outcome.result)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.info.experiment_id == client.get_experiment_by_name(experiment).experiment_id
    assert run.data.params["max_depth"] == "3" and run.data.params["workers"] == "2"
    assert run.data.tags["rayline.dataset_uri"] == "sklearn:iris"
    assert run.data.tags["rayline.dataset_sha256"] == outcome.result.dataset_sha256
    assert run.data.tags["rayline.code_version"] == outcome.result.code_version
    for metric in ("train-mlogloss", "validation-mlogloss"):
        history = client.get_metric_history(run_id, metric)
        assert sorted(m.step for m in history) == list(range(1, ROUNDS + 1)), metric
    losses = [m.value for m in sorted(history, key=lambda m: m.step)]
    assert losses[-1] < losses[0]  # a loss curve that goes down
    assert "validation_accuracy" in run.data.metrics
    (logged,) = client.search_logged_models(experiment_ids=[run.info.experiment_id])
    assert logged.source_run_id == run_id and logged.tags["rayline.model"] == name


def test_sklearn_is_one_run_with_final_metrics_and_a_registered_version(
    training_env: TrainingEnv, tracked: tuple[MlflowClient, str]
) -> None:
    client, _ = tracked
    name = _name("mlskl")
    spec = spec_for(
        name,
        "sklearn:iris",
        target="target",
        framework="sklearn",
        hyperparameters={"estimator": "random_forest", "n_estimators": 10},
    )
    outcome = run_job(training_env, spec)
    assert outcome.status == "SUCCEEDED", outcome.logs[-3000:]
    assert outcome.result is not None
    run_id = _check_version_lineage(training_env, client, name, outcome.result)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["validation_accuracy"] == pytest.approx(
        outcome.result.metrics["validation_accuracy"]
    )
    assert run.data.params["n_estimators"] == "10"
    import mlflow.sklearn

    model = mlflow.sklearn.load_model(f"models:/{name}/1")
    assert hasattr(model, "predict_proba")


def _dead_uri() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_unreachable_mlflow_fails_before_training_when_required(
    training_env: TrainingEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = _dead_uri()
    monkeypatch.setenv("RAYLINE_MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("RAYLINE_MLFLOW_REQUIRED", "true")
    name = _name("mldead")
    spec = spec_for(name, "sklearn:iris", target="target", framework="sklearn")
    outcome = run_job(training_env, spec)
    assert_failed_without_version(
        training_env, outcome, name, "TrackingUnavailableError", uri, "unreachable"
    )
    assert outcome.error is not None and "training did not start" in outcome.error.message
    assert "[rayline] data ready" not in outcome.logs


def test_unreachable_mlflow_trains_untracked_when_allowed(
    training_env: TrainingEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAYLINE_MLFLOW_TRACKING_URI", _dead_uri())
    monkeypatch.setenv("RAYLINE_MLFLOW_REQUIRED", "false")
    name = _name("mlfree")
    spec = spec_for(name, "sklearn:iris", target="target", framework="sklearn")
    outcome = run_job(training_env, spec)
    assert outcome.status == "SUCCEEDED", outcome.logs[-3000:]
    assert outcome.result is not None and outcome.result.mlflow_run_id is None
    assert "tracking failed, run untracked" in outcome.logs
    row = ModelRegistry().get_version(training_env.engine, name=name, version=1)
    assert row.mlflow_run_id is None
