"""What the Ray job API says about a job, and how a Rayline job ended: typed values.

Returned by `rayline.jobs.client.JobClient` (which re-exports them) and the
Airflow hooks; parsing the job API's JSON happens here, in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from rayline.jobs.output import ReportedError

__all__ = ["TERMINAL_STATUSES", "JobOutcome", "JobState"]

#: Ray's terminal job statuses (``ray.job_submission.JobStatus.is_terminal``).
TERMINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "STOPPED"})

R = TypeVar("R", bound=BaseModel)


@dataclass(frozen=True)
class JobState:
    """What the job API says about one job.

    Attributes:
        submission_id: The job's submission id.
        status: ``PENDING``, ``RUNNING``, ``SUCCEEDED``, ``FAILED`` or ``STOPPED``.
        message: Ray's explanation of the status (the error, for failed jobs).
        error_type: Ray's error category of a failed job, if any.
        driver_exit_code: The entrypoint's exit code once it ended.
        start_time: When the job started, in milliseconds since the epoch.
        end_time: When it ended, in milliseconds since the epoch.
    """

    submission_id: str
    status: str
    message: str = ""
    error_type: str | None = None
    driver_exit_code: int | None = None
    start_time: int | None = None
    end_time: int | None = None

    @property
    def is_terminal(self) -> bool:
        """True once the job can change no more."""
        return self.status in TERMINAL_STATUSES

    @property
    def succeeded(self) -> bool:
        """True when the job ended SUCCEEDED."""
        return self.status == "SUCCEEDED"

    @property
    def seconds(self) -> float | None:
        """The job's own run time (submit to end, as Ray measured it), once it ended."""
        if self.start_time is None or self.end_time is None:
            return None
        return (self.end_time - self.start_time) / 1000

    @classmethod
    def from_json(cls, submission_id: str, body: Mapping[str, Any]) -> JobState:
        """Parse the body of ``GET /api/jobs/{submission_id}``."""
        exit_code = body.get("driver_exit_code")
        return cls(
            submission_id=submission_id,
            status=str(body.get("status", "")),
            message=str(body.get("message") or ""),
            error_type=body.get("error_type"),
            driver_exit_code=int(exit_code) if exit_code is not None else None,
            start_time=body.get("start_time"),
            end_time=body.get("end_time"),
        )


@dataclass(frozen=True)
class JobOutcome(Generic[R]):
    """How a job ended.

    Attributes:
        submission_id: The Ray job's submission id.
        status: Ray's final job status: ``SUCCEEDED``, ``FAILED`` or ``STOPPED``.
        result: The job's typed result, if it printed one.
        error: The error the job reported, if any.
        logs: Everything the job printed.
    """

    submission_id: str
    status: str
    result: R | None = None
    error: ReportedError | None = None
    logs: str = field(default="", repr=False)

    @property
    def succeeded(self) -> bool:
        """True when the job succeeded and printed its result."""
        return self.status == "SUCCEEDED" and self.result is not None

    def describe_failure(self) -> str:
        """One line saying why the job failed (the job's own error when it printed one)."""
        if self.error is not None:
            return str(self.error)
        tail = [line for line in self.logs.splitlines() if line.strip()][-1:]
        last = f"; last log line: {tail[0][:300]}" if tail else ""
        return f"job {self.submission_id} ended {self.status} without a result{last}"
