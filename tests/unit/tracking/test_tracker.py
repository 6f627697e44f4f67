"""The MLflow tracker: batched metrics, failures that never fail training, the null tracker."""

from __future__ import annotations

from typing import Any, cast

import pytest

from rayline.tracking.settings import TrackingSettings
from rayline.tracking.tracker import MlflowTracker, NullTracker, open_tracker
from tests.unit.tracking.fakes import FakeClient


def _tracker(client: FakeClient, **settings: Any) -> MlflowTracker:
    config = TrackingSettings(tracking_uri="http://127.0.0.1:1", **settings)
    return MlflowTracker(cast("Any", client), config, "run-1")


def test_iterations_are_sent_in_batches_with_their_steps() -> None:
    client = FakeClient()
    tracker = _tracker(client, flush_seconds=3600)
    for step in range(1, 301):
        tracker.on_iteration(step, {"train-rmse": 1 / step, "validation-rmse": 2 / step})
    assert client.batches == []  # nothing sent per iteration
    tracker.flush()
    assert len(client.batches) == 1
    metrics = client.metrics()
    assert [m.step for m in metrics if m.key == "train-rmse"] == list(range(1, 301))
    assert metrics[-1].value == pytest.approx(2 / 300)


def test_a_full_buffer_is_sent_in_batches_of_at_most_1000() -> None:
    client = FakeClient()
    tracker = _tracker(client, flush_seconds=3600)
    for step in range(1, 801):
        tracker.on_iteration(step, {"a": 1.0, "b": 2.0})
    tracker.flush()
    assert [len(batch["metrics"]) for batch in client.batches] == [1000, 600]


def test_buffered_iterations_are_sent_when_the_flush_interval_passed() -> None:
    client = FakeClient()
    tracker = _tracker(client, flush_seconds=0)
    tracker.on_iteration(1, {"loss": 0.5})
    assert len(client.metrics()) == 1


def test_params_are_sent_as_params_and_lineage_as_tags() -> None:
    client = FakeClient()
    tracker = _tracker(client)
    tracker.log_run(
        {"max_depth": 3, "eta": 0.1},
        {"dataset_uri": "sklearn:iris", "dataset_sha256": "ab", "workflow_run_id": None},
    )
    (batch,) = client.batches
    assert {(p.key, p.value) for p in batch["params"]} == {("max_depth", "3"), ("eta", "0.1")}
    assert {(t.key, t.value) for t in batch["tags"]} == {
        ("rayline.dataset_uri", "sklearn:iris"),
        ("rayline.dataset_sha256", "ab"),
    }


def test_an_mlflow_failure_after_start_is_recorded_and_stops_tracking() -> None:
    client = FakeClient(fail=ConnectionError("connection refused"))
    tracker = _tracker(client, flush_seconds=0)
    tracker.on_iteration(1, {"loss": 0.5})  # must not raise
    assert tracker.failure is not None and "failed while logging metrics" in tracker.failure
    client.fail = None
    tracker.on_iteration(2, {"loss": 0.4})
    tracker.register(name="m", version=1, version_id="v", artifact_uri="s3://b/m/v")
    tracker.finish(succeeded=True)
    assert client.batches == [] and client.versions == [] and client.terminated == []


def test_register_names_the_rayline_version_on_the_mlflow_version() -> None:
    client = FakeClient()
    tracker = _tracker(client)
    tracker._model_id = "m-123"  # as log_model leaves it
    tracker.register(name="iris", version=4, version_id="20261202-ab", artifact_uri="s3://b/x")
    (version,) = client.versions
    assert version["name"] == "iris" and version["source"] == "models:/m-123"
    assert version["run_id"] == "run-1" and version["model_id"] == "m-123"
    assert version["tags"]["rayline.version"] == "4"
    assert version["tags"]["rayline.version_id"] == "20261202-ab"
    tracker.finish(succeeded=True)
    assert client.terminated == ["FINISHED"]


def test_tracking_is_off_without_a_uri() -> None:
    tracker = open_tracker(model_name="m", run_name="r", settings=TrackingSettings())
    assert isinstance(tracker, NullTracker)
    assert tracker.run_id is None and tracker.failure is None
