"""The training job opens tracking before training and closes it after registration."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from rayline.jobs.output import read_output
from rayline.jobs.results import TrainResult
from rayline.jobs.train import EXIT_BAD_INPUT, EXIT_FAILED, main
from rayline.training.errors import TrainingFailedError

SPEC = json.dumps(
    {
        "spec_version": 1,
        "name": "m",
        "dataset": "sklearn:iris",
        "target": "target",
        "task": "classification",
        "framework": "sklearn",
    }
)


class FakeTracker:
    """Records the calls the job makes."""

    run_id: str | None = "run-9"
    failure: str | None = None
    location: str | None = "fake run-9"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def register(self, **version: Any) -> None:
        """Record the registration."""
        self.calls.append(f"register {version['name']}:{version['version']}")

    def finish(self, *, succeeded: bool) -> None:
        """Record the end."""
        self.calls.append(f"finish {succeeded}")


class _Outcome:
    name, version, version_id, artifact_uri = "m", 3, "v3", "file:///a/m/v3"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "version_id": self.version_id,
            "artifact_uri": self.artifact_uri,
            "manifest_sha256": "0" * 64,
            "framework": "sklearn",
            "metrics": {},
            "params": {},
            "dataset_uri": "sklearn:iris",
            "dataset_sha256": "1" * 64,
            "code_version": "test",
            "run_name": "r",
            "mlflow_run_id": "run-9",
        }


@pytest.fixture
def tracker(monkeypatch: pytest.MonkeyPatch) -> FakeTracker:
    fake = FakeTracker()
    monkeypatch.setattr("rayline.tracking.tracker.open_tracker", lambda **_: fake)
    return fake


def test_unreachable_tracking_fails_before_training(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("RAYLINE_MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    trained: list[object] = []
    monkeypatch.setattr("rayline.training.runner.run_training", lambda *a, **k: trained.append(a))
    assert main(["--spec", SPEC]) == EXIT_BAD_INPUT
    error = read_output(capsys.readouterr().out, TrainResult).error
    assert error is not None and error.error == "TrackingUnavailableError"
    assert "unreachable" in error.message and "training did not start" in error.message
    assert trained == []


def test_the_tracker_observes_training_then_registers_and_finishes(
    monkeypatch: pytest.MonkeyPatch, tracker: FakeTracker, capsys: pytest.CaptureFixture[str]
) -> None:
    def run_training(spec: Any, **kwargs: Any) -> _Outcome:
        assert kwargs["observer"] is tracker
        tracker.calls.append("train")
        return _Outcome()

    monkeypatch.setattr("rayline.training.runner.run_training", run_training)
    assert main(["--spec", SPEC]) == 0
    assert tracker.calls == ["train", "register m:3", "finish True"]
    out = capsys.readouterr().out
    assert "[rayline] MLflow: fake run-9" in out
    result = read_output(out, TrainResult).result
    assert result is not None and result.mlflow_run_id == "run-9"


def test_a_failed_training_ends_the_run_as_failed(
    monkeypatch: pytest.MonkeyPatch, tracker: FakeTracker
) -> None:
    def run_training(spec: Any, **kwargs: Any) -> _Outcome:
        raise TrainingFailedError("workers died")

    monkeypatch.setattr("rayline.training.runner.run_training", run_training)
    assert main(["--spec", SPEC]) == EXIT_FAILED
    assert tracker.calls == ["finish False"]
