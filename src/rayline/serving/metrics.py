"""Prometheus metrics of a served model, summed over all its replicas.

Each replica is its own process. With ``PROMETHEUS_MULTIPROC_DIR`` set in the
replicas' environment (the app does this through the Serve runtime env),
prometheus-client keeps every process's values in memory-mapped files in that
directory, and ``/metrics`` adds them up, whichever replica answers it.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

__all__ = [
    "BATCH_SIZE",
    "CONTENT_TYPE_LATEST",
    "ERRORS",
    "LATENCY",
    "MULTIPROC_ENV",
    "REQUESTS",
    "render",
]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_LABELS = ("model", "version")

REQUESTS = Counter(
    "rayline_serving_requests",
    "Prediction requests answered, by HTTP status code.",
    [*_LABELS, "code"],
)
ERRORS = Counter(
    "rayline_serving_errors",
    "Prediction requests refused or failed (4xx and 5xx), by HTTP status code.",
    [*_LABELS, "code"],
)
LATENCY = Histogram(
    "rayline_serving_request_duration_seconds",
    "Time from receiving a prediction request to answering it.",
    _LABELS,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_SIZE = Histogram(
    "rayline_serving_batch_size",
    "Rows predicted in one model call (dynamic batching).",
    _LABELS,
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096),
)


def render() -> bytes:
    """The metrics in the Prometheus text format, of every replica when multi-process."""
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)
