"""What the real MLflow server refuses is said before training, or turns tracking off if allowed."""

from __future__ import annotations

import secrets

import pytest
from mlflow import MlflowClient

from rayline.tracking.errors import TrackingUnavailableError
from rayline.tracking.settings import TrackingSettings
from rayline.tracking.tracker import MlflowTracker, NullTracker, open_tracker
from tests.integration.tracking.conftest import MlflowServer

pytestmark = pytest.mark.integration

TOO_LONG = "x" * 501  # MLflow's experiment names are at most 500 characters


def test_a_refused_experiment_name_stops_the_run_before_training(
    mlflow_server: MlflowServer,
) -> None:
    settings = TrackingSettings(tracking_uri=mlflow_server.url, experiment=TOO_LONG, required=True)
    with pytest.raises(TrackingUnavailableError) as caught:
        open_tracker(model_name="refused", run_name="r1", settings=settings)
    message = str(caught.value)
    assert "refused the experiment name" in message and "RAYLINE_MLFLOW_EXPERIMENT" in message
    assert "training did not start" in message


def test_a_refused_experiment_name_trains_untracked_when_allowed(
    mlflow_server: MlflowServer,
) -> None:
    settings = TrackingSettings(tracking_uri=mlflow_server.url, experiment=TOO_LONG, required=False)
    tracker = open_tracker(model_name="refused", run_name="r2", settings=settings)
    assert isinstance(tracker, NullTracker)
    assert tracker.failure is not None and "refused the experiment name" in tracker.failure


def test_a_deleted_experiment_is_named_with_the_way_back(mlflow_server: MlflowServer) -> None:
    name = f"gone-{secrets.token_hex(3)}"
    client = MlflowClient(tracking_uri=mlflow_server.url)
    client.delete_experiment(client.create_experiment(name))
    settings = TrackingSettings(tracking_uri=mlflow_server.url, experiment=name, required=True)
    with pytest.raises(TrackingUnavailableError, match="is deleted: restore it"):
        open_tracker(model_name="deleted", run_name="r3", settings=settings)


def test_a_usable_server_opens_a_run(mlflow_server: MlflowServer) -> None:
    name = f"ok-{secrets.token_hex(3)}"
    settings = TrackingSettings(tracking_uri=mlflow_server.url, experiment=name, required=True)
    tracker = open_tracker(model_name=name, run_name="r4", settings=settings)
    assert isinstance(tracker, MlflowTracker) and tracker.failure is None
    tracker.finish(succeeded=True)
    assert MlflowClient(tracking_uri=mlflow_server.url).get_run(
        str(tracker.run_id)
    ).info.status == ("FINISHED")
