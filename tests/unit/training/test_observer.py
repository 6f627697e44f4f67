"""The training observer hook: loop histories reach the observer with their steps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rayline.training.frameworks.xgboost_trainer import rounds_history
from rayline.training.observer import NULL_OBSERVER, TrainingObserver, replay_history


class RecordingObserver:
    """A fake observer that keeps every iteration."""

    run_id: str | None = "fake"

    def __init__(self) -> None:
        self.iterations: list[tuple[int, dict[str, float]]] = []

    def log_run(self, params: dict[str, Any], lineage: dict[str, Any]) -> None:
        """Unused here."""

    def on_iteration(self, step: int, metrics: dict[str, float]) -> None:
        """Keep the iteration."""
        self.iterations.append((step, metrics))

    def log_model(self, directory: Path, bundle: Any) -> None:
        """Unused here."""


def test_xgboost_rounds_become_steps_counted_across_a_resume() -> None:
    evals = {"train": {"rmse": [3.0, 2.0, 1.0]}, "validation": {"rmse": [3.5, 2.5, 1.5]}}
    history = rounds_history(evals, first_step=11)  # resumed after 10 rounds
    assert history == [
        (11, {"train-rmse": 3.0, "validation-rmse": 3.5}),
        (12, {"train-rmse": 2.0, "validation-rmse": 2.5}),
        (13, {"train-rmse": 1.0, "validation-rmse": 1.5}),
    ]


def test_replay_hands_each_iteration_to_the_observer() -> None:
    observer = RecordingObserver()
    replay_history(observer.on_iteration, [(1, {"loss": 2}), (2, {"loss": 1})])
    assert observer.iterations == [(1, {"loss": 2.0}), (2, {"loss": 1.0})]


def test_a_loop_without_history_replays_nothing() -> None:
    observer: TrainingObserver = RecordingObserver()
    replay_history(observer.on_iteration, None)
    replay_history(NULL_OBSERVER.on_iteration, [(1, {"loss": 1.0})])
    assert observer.iterations == []  # type: ignore[attr-defined]
