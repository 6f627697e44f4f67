"""A stand-in for ``mlflow.MlflowClient`` that records what a tracker sends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class FakeClient:
    """Records ``log_batch`` calls; ``fail`` makes every call raise it."""

    batches: list[dict[str, Any]] = field(default_factory=list)
    versions: list[dict[str, Any]] = field(default_factory=list)
    terminated: list[str] = field(default_factory=list)
    fail: Exception | None = None

    def log_batch(self, run_id: str, **batch: Any) -> None:
        """Record one batch."""
        if self.fail is not None:
            raise self.fail
        self.batches.append(batch)

    def create_model_version(self, name: str, **kwargs: Any) -> Any:
        """Record a model version."""
        self.versions.append({"name": name, **kwargs})
        return type("Version", (), {"version": str(len(self.versions))})()

    def set_tag(self, run_id: str, key: str, value: str) -> None:
        """Accept a run tag."""

    def set_terminated(self, run_id: str, status: str) -> None:
        """Record the end of the run."""
        self.terminated.append(status)

    def metrics(self) -> list[Any]:
        """Every metric sent, in order."""
        return [m for batch in self.batches for m in batch.get("metrics", [])]
