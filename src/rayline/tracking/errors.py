"""Tracking errors: each names what MLflow refused and how to fix it."""

from __future__ import annotations

__all__ = ["TrackingError", "TrackingUnavailableError"]


class TrackingError(Exception):
    """Base of tracking errors."""


class TrackingUnavailableError(TrackingError):
    """MLflow cannot be used for this run (unreachable, credentials, a refused name).

    Raised before training when ``RAYLINE_MLFLOW_REQUIRED`` is true; otherwise the
    run goes on untracked with this message as a warning.
    """
