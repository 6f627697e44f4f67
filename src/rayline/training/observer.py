"""The one interface through which a training run reports to whoever watches it.

The run calls an observer at four points: its parameters and lineage before
training, each iteration's metrics with its step, the finished model files, and
(through :attr:`TrainingObserver.run_id`) the id to keep in Rayline's metadata.
:mod:`rayline.tracking` implements it with MLflow; :data:`NULL_OBSERVER` ignores
everything. Observers must not fail the run: they record their own failures.

A training loop running in Ray Train workers cannot call the driver's observer,
so rank 0 returns its :data:`IterationHistory` from the loop and the driver
replays it with :func:`replay_history`; an in-process loop calls
:meth:`TrainingObserver.on_iteration` directly.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

if TYPE_CHECKING:
    from rayline.training.artifacts import ModelBundle

__all__ = [
    "NULL_OBSERVER",
    "IterationHistory",
    "NullObserver",
    "TrainingObserver",
    "replay_history",
]

#: ``[(step, {metric: value}), ...]``, as a training loop returns it.
IterationHistory: TypeAlias = list[tuple[int, dict[str, float]]]


class TrainingObserver(Protocol):
    """What a training run reports, in the order it reports it."""

    @property
    def run_id(self) -> str | None:
        """The tracking run's id (kept as the version's lineage), or None."""
        ...

    def log_run(self, params: dict[str, Any], lineage: dict[str, Any]) -> None:
        """Record the run's parameters and lineage (dataset, code, workflow run)."""
        ...

    def on_iteration(self, step: int, metrics: dict[str, float]) -> None:
        """Record the metrics of one iteration (boosting round, epoch)."""
        ...

    def log_model(self, directory: Path, bundle: ModelBundle) -> None:
        """Record the finished model: its files in ``directory`` and final metrics."""
        ...


class NullObserver:
    """An observer that records nothing (tracking off)."""

    run_id: str | None = None

    def log_run(self, params: dict[str, Any], lineage: dict[str, Any]) -> None:
        """Ignore the run's parameters."""

    def on_iteration(self, step: int, metrics: dict[str, float]) -> None:
        """Ignore an iteration."""

    def log_model(self, directory: Path, bundle: ModelBundle) -> None:
        """Ignore the model."""


NULL_OBSERVER = NullObserver()


def replay_history(on_iteration: Callable[[int, dict[str, float]], None], history: Any) -> None:
    """Hand a loop's returned :data:`IterationHistory` to ``on_iteration`` (None: nothing)."""
    for step, metrics in history or ():
        on_iteration(int(step), {k: float(v) for k, v in metrics.items()})
