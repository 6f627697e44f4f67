"""Errors of Rayline's Airflow operators; each names the problem and the fix."""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowException, AirflowFailException

__all__ = [
    "InvalidJobRequestError",
    "RayJobApiError",
    "RayJobFailedError",
    "RayJobNotFoundError",
    "RayJobRefusedError",
]


class InvalidJobRequestError(AirflowFailException):
    """A job's request (training spec, model, port...) is invalid: the task fails without retrying.

    Nothing was submitted; fix the DAG run's params and trigger it again.
    """


class RayJobApiError(AirflowException):
    """The Ray Job Submission API did not answer, or answered something unexpected."""


class RayJobNotFoundError(RayJobApiError):
    """The job API answered, but knows no job with this submission id (HTTP 404)."""

    def __init__(self, submission_id: str, address: str) -> None:
        self.submission_id = submission_id
        super().__init__(
            f"the Ray cluster at {address} has no job {submission_id!r}; was the cluster "
            "replaced since the job was submitted?"
        )


class RayJobFailedError(AirflowException):
    """A Ray job ended FAILED or STOPPED; carries Ray's status and message."""

    def __init__(self, submission_id: str, *, status: str, message: str) -> None:
        self.submission_id = submission_id
        self.status = status
        self.message = message
        super().__init__(
            f"Ray job {submission_id} ended {status}: {message or 'no message'}; its log is "
            "above in this task's log"
        )


class RayJobRefusedError(RayJobFailedError, AirflowFailException):
    """A Ray job failed in a way trying again cannot change: the task fails without retrying.

    Either its exit code means bad input, or the error it reported is one that
    fails the same way every time (e.g. the serving image cannot be built).
    """

    def __init__(
        self,
        submission_id: str,
        *,
        status: str,
        message: str,
        because: str,
        exit_code: int | None = None,
    ) -> None:
        self.exit_code = exit_code
        self.because = because
        super().__init__(submission_id, status=status, message=message)
        self.args = (f"{self.args[0]}; {because}, so no retry",)
