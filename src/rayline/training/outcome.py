"""The lines a training job prints for whoever follows its logs.

A job ends with exactly one marker line, ``RAYLINE_RESULT {json}`` on success
or ``RAYLINE_ERROR {json}`` on failure, so the CLI and Airflow can report the
registered version or the reason without a second channel to the cluster.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["ERROR_MARKER", "RESULT_MARKER", "error_line", "find_marker", "result_line"]

RESULT_MARKER = "RAYLINE_RESULT"
ERROR_MARKER = "RAYLINE_ERROR"


def result_line(outcome: dict[str, Any]) -> str:
    """The success marker line for ``outcome``."""
    return f"{RESULT_MARKER} {json.dumps(outcome, sort_keys=True)}"


def error_line(kind: str, message: str) -> str:
    """The failure marker line: the error's class name and its message."""
    return f"{ERROR_MARKER} {json.dumps({'error': kind, 'message': message})}"


def find_marker(logs: str, marker: str) -> dict[str, Any] | None:
    """The JSON of the last ``marker`` line in ``logs``, or None."""
    prefix = f"{marker} "
    for line in reversed(logs.splitlines()):
        if line.startswith(prefix):
            try:
                value = json.loads(line[len(prefix) :])
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value
    return None
