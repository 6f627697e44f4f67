"""What a job prints for whoever follows its log: one result line, or one error line.

A Rayline job ends with exactly one marker line, ``RAYLINE_RESULT {json}`` on
success or ``RAYLINE_ERROR {"error": kind, "message": ...}`` on failure. The
job prints it with :func:`result_line` / :func:`error_line`; the CLI, Airflow and
serving read it back with :func:`read_output`, the one parser. Ray may prefix a
line with ``(pid=...)`` or ``(raylet)``, so a marker counts anywhere in a line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = [
    "ERROR_MARKER",
    "RESULT_MARKER",
    "AnyResult",
    "JobOutput",
    "ReportedError",
    "error_line",
    "failure_message",
    "read_output",
    "result_line",
]

RESULT_MARKER = "RAYLINE_RESULT"
ERROR_MARKER = "RAYLINE_ERROR"

R = TypeVar("R", bound=BaseModel)


class ReportedError(BaseModel):
    """Why a job failed, as the job itself said it.

    Attributes:
        error: The error's class name, e.g. ``MissingTargetError``.
        message: What went wrong and how to fix it.
    """

    model_config = ConfigDict(frozen=True)

    error: str
    message: str = ""

    def __str__(self) -> str:
        return f"{self.error}: {self.message}" if self.error else self.message


class AnyResult(BaseModel):
    """The result of a job that is not one of Rayline's: any JSON object."""

    model_config = ConfigDict(frozen=True, extra="allow")


@dataclass(frozen=True)
class JobOutput(Generic[R]):
    """The markers found in a job's log: its typed result, or its error, or neither."""

    result: R | None = None
    error: ReportedError | None = None


def result_line(result: BaseModel) -> str:
    """The success marker line of ``result``."""
    return f"{RESULT_MARKER} {result.model_dump_json()}"


def error_line(kind: str, message: str) -> str:
    """The failure marker line: the error's class name and its message."""
    return f"{ERROR_MARKER} {ReportedError(error=kind, message=message).model_dump_json()}"


def read_output(logs: str, result_type: type[R]) -> JobOutput[R]:
    """The last result and the last error marker of a job's log.

    A result line whose JSON does not fit ``result_type`` counts as missing (the
    job then failed in a way the caller reports from its status and log).

    Example:
        >>> from rayline.jobs.results import TrainResult
        >>> read_output("(pid=7) RAYLINE_ERROR {\\"error\\": \\"E\\"}", TrainResult).error
        ReportedError(error='E', message='')
    """
    result: R | None = None
    raw = _last_marker(logs, RESULT_MARKER)
    if raw is not None:
        try:
            result = result_type.model_validate(raw)
        except ValidationError:
            result = None
    return JobOutput(result=result, error=_read_error(logs))


def _read_error(logs: str) -> ReportedError | None:
    raw = _last_marker(logs, ERROR_MARKER)
    if raw is None:
        return None
    try:
        return ReportedError.model_validate(raw)
    except ValidationError:
        return ReportedError(error="", message=json.dumps(raw))


def _last_marker(logs: str, marker: str) -> dict[str, Any] | None:
    token = f"{marker} "
    for line in reversed(logs.splitlines()):
        start = line.find(token)
        if start < 0:
            continue
        try:
            value = json.loads(line[start + len(token) :])
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def failure_message(message: str, logs: str | None) -> str:
    """Ray's message without the log tail it appends, plus the job's own explanation."""
    # Ray adds ", last available logs (truncated to N chars):\n..." to a failed job's
    # message; whoever follows the job has shown the log already.
    headline = message.split(", last available logs", 1)[0].split("\n", 1)[0][:500]
    error = _read_error(logs) if logs else None
    return f"{headline}; the job said: {error}" if error is not None else headline
