"""What a Ray job tells Airflow through its log: a result, or the reason it failed.

A job hands a result to Airflow by printing one line ``RAYLINE_RESULT {json object}``;
the last such line is pushed to XCom as ``job_result``. A failing job may print
``RAYLINE_ERROR {"error": kind, "message": ...}``, which the task's error then
quotes. Rayline's own jobs do both (see `rayline.training.outcome`); any other
job may do the same.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "ERROR_MARKER",
    "RESULT_MARKER",
    "failure_message",
    "parse_job_error",
    "parse_job_result",
]

RESULT_MARKER = "RAYLINE_RESULT "
ERROR_MARKER = "RAYLINE_ERROR "


def parse_job_result(logs: str) -> dict[str, Any] | None:
    """Return the JSON object of the last ``RAYLINE_RESULT`` line of a job's log, if any."""
    return _last_marker(logs, RESULT_MARKER)


def parse_job_error(logs: str) -> str | None:
    """Return ``"kind: message"`` of the last ``RAYLINE_ERROR`` line of a job's log, if any."""
    error = _last_marker(logs, ERROR_MARKER)
    if error is None:
        return None
    kind, message = error.get("error"), error.get("message")
    return f"{kind}: {message}" if kind else str(message)


def _last_marker(logs: str, marker: str) -> dict[str, Any] | None:
    for line in reversed(logs.splitlines()):
        # Anywhere in the line: Ray may prefix a worker's output with "(pid=...)".
        start = line.find(marker)
        if start < 0:
            continue
        try:
            value = json.loads(line[start + len(marker) :])
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def failure_message(message: str, logs: str | None) -> str:
    """Ray's message without the log tail it appends, plus the job's own explanation."""
    # Ray adds ", last available logs (truncated to N chars):\n..." to a failed job's
    # message; the log is in the task log already.
    headline = message.split(", last available logs", 1)[0].split("\n", 1)[0][:500]
    error = parse_job_error(logs) if logs else None
    return f"{headline}; the job said: {error}" if error else headline
