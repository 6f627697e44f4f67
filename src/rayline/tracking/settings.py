"""Tracking settings: where MLflow is, and whether training may go on without it.

Read from ``RAYLINE_MLFLOW_*`` variables. Tracking is off while
``RAYLINE_MLFLOW_TRACKING_URI`` is empty. Credentials for a server with
authentication are MLflow's own variables (``MLFLOW_TRACKING_USERNAME`` /
``MLFLOW_TRACKING_PASSWORD`` or ``MLFLOW_TRACKING_TOKEN``), which the MLflow client
reads itself; :func:`job_env_vars` carries them into a training job.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["TrackingSettings", "embedded_tracking_uri", "job_env_vars"]

# MLflow's own credential variables: forwarded to the job, never logged.
CREDENTIAL_VARS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")


class TrackingSettings(BaseSettings):
    """MLflow tracking settings.

    Attributes:
        tracking_uri: ``http://host:port`` of a tracking server, or ``sqlite:///path``
            for MLflow's local store; empty turns tracking off.
        required: When true, training fails before it starts if MLflow cannot be
            used; when false it goes on untracked and says so.
        experiment: The MLflow experiment every run goes into.
        artifact_location: Artifact root of a new experiment; empty: the server's
            default (for a ``sqlite:`` store, ``artifacts/`` beside the database).
        probe_timeout_seconds: How long the start-up check waits for the server.
        flush_seconds: Per-iteration metrics are sent in one batch at most this often.
    """

    model_config = SettingsConfigDict(env_prefix="RAYLINE_MLFLOW_", extra="ignore")

    tracking_uri: str = ""
    required: bool = True
    experiment: str = "rayline"
    artifact_location: str = ""
    probe_timeout_seconds: float = 5.0
    flush_seconds: float = 5.0

    @property
    def enabled(self) -> bool:
        """Whether tracking is on."""
        return bool(self.tracking_uri.strip())

    def resolved_artifact_location(self) -> str | None:
        """The artifact root to give a new experiment, or None for the server's default."""
        if self.artifact_location:
            return self.artifact_location
        parsed = urlparse(self.tracking_uri)
        if parsed.scheme == "sqlite":
            # sqlite:////abs/path/mlflow.db -> file:///abs/path/artifacts
            database = Path(self.tracking_uri.removeprefix("sqlite:///"))
            return (database.parent / "artifacts").resolve().as_uri()
        return None


def embedded_tracking_uri(home: Path) -> str:
    """MLflow's local SQLite store under ``home/mlflow`` (the embedded demo's tracking)."""
    directory = home / "mlflow"
    directory.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(directory / 'mlflow.db').resolve()}"


def job_env_vars() -> dict[str, str]:
    """The tracking variables of this process a training job needs (some are secret)."""
    return {
        name: value
        for name, value in os.environ.items()
        if name.startswith("RAYLINE_MLFLOW_") or name in CREDENTIAL_VARS
    }
