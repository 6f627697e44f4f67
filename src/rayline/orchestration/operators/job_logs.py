"""Following a Ray job from an Airflow worker: its log into the task log, its status to the end.

`SubmitRayJobOperator` uses these when it does not defer (``deferrable=False``)
and, after a deferral, to write what is left of the log; the triggerer's side
is `rayline.orchestration.triggers.ray_job.RayJobTrigger`.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any, Protocol

from airflow.sdk.exceptions import AirflowException

from rayline.jobs.output import ReportedError
from rayline.orchestration.exceptions import RayJobApiError, RayJobNotFoundError
from rayline.orchestration.hooks.ray_jobs import RayJobHook, RayJobState

__all__ = [
    "JobLogWriter",
    "TaskLog",
    "follow_on_worker",
    "job_seconds",
    "no_retry_reason",
    "poll_until_done",
]


class TaskLog(Protocol):
    """A task's logger: Airflow's (structlog) or the standard library's."""

    def info(self, msg: Any, /, *args: Any) -> Any: ...

    def warning(self, msg: Any, /, *args: Any) -> Any: ...


class JobLogWriter:
    """Writes a Ray job's log lines to a task log, each line once.

    :param hook: the job API of the job's cluster.
    :param submission_id: the job.
    :param log: the task's logger.
    :param offset: characters of the log written already (e.g. by the trigger).
    """

    def __init__(
        self, hook: RayJobHook, submission_id: str, log: TaskLog, *, offset: int = 0
    ) -> None:
        self.hook = hook
        self.submission_id = submission_id
        self.log = log
        self.offset = offset

    def write(self, *, final: bool) -> str | None:
        """Write the lines after ``offset``; without ``final``, only complete lines.

        Returns:
            The whole log, or None when it could not be read.
        """
        try:
            logs = self.hook.get_job_logs(self.submission_id)
        except RayJobApiError as exc:
            # Logs are a courtesy here; the job's status decides the task's fate.
            self.log.warning("Cannot read the log of Ray job %s: %s", self.submission_id, exc)
            return None
        end = len(logs) if final else logs.rfind("\n", self.offset) + 1
        for line in logs[self.offset : end].splitlines():
            self.log.info("[ray job] %s", line)
        self.offset = max(self.offset, end)
        return logs


def poll_until_done(
    hook: RayJobHook,
    submission_id: str,
    *,
    log: TaskLog,
    poll_interval: float,
    unreachable_timeout: float,
    job_timeout: float | None = None,
    writer: JobLogWriter | None = None,
    wait_limit: float | None = None,
) -> RayJobState | None:
    """Poll the job until it ends, writing its log as it comes when given a ``writer``.

    Args:
        hook: the job API of the job's cluster.
        submission_id: the job.
        log: the task's logger.
        poll_interval: seconds between two status checks.
        unreachable_timeout: seconds the job API may stay unreachable.
        job_timeout: seconds the job may run; it is stopped after that. None: no limit.
        writer: where the log lines go while the job runs.
        wait_limit: seconds to poll at most; None: until the job ends.

    Returns:
        The job's terminal state, or None when ``wait_limit`` passed first.

    Raises:
        RayJobApiError: the job API stayed unreachable for ``unreachable_timeout``.
        RayJobNotFoundError: the cluster does not know the job.
        AirflowException: the job ran longer than ``job_timeout`` (it was stopped).
    """
    deadline = time.monotonic() + job_timeout if job_timeout else None
    give_up = time.monotonic() + wait_limit if wait_limit is not None else None
    unreachable_since: float | None = None
    while True:
        try:
            state = hook.get_job_state(submission_id)
        except RayJobApiError as exc:
            now = time.monotonic()
            unreachable_since = unreachable_since or now
            if now - unreachable_since >= unreachable_timeout:
                raise
            log.warning("Ray job %s: %s; retrying", submission_id, exc)
            time.sleep(poll_interval)
            continue
        unreachable_since = None
        if state is None:
            raise RayJobNotFoundError(submission_id, hook.address)
        if state.is_terminal:
            return state
        if writer is not None:
            writer.write(final=False)
        if deadline is not None and time.monotonic() >= deadline:
            hook.stop_job(submission_id)
            raise AirflowException(
                f"Ray job {submission_id} ran longer than {job_timeout:g} s and was "
                "stopped; raise job_timeout if it needs longer"
            )
        if give_up is not None and time.monotonic() >= give_up:
            return None
        time.sleep(poll_interval)


def follow_on_worker(
    hook: RayJobHook,
    submission_id: str,
    *,
    log: TaskLog,
    poll_interval: float,
    unreachable_timeout: float,
    job_timeout: float | None,
    stream_logs: bool,
    wait_limit: float | None = None,
) -> tuple[RayJobState | None, int]:
    """Poll the job on this worker (see `poll_until_done`), its log into the task log.

    Returns:
        The terminal state (None when ``wait_limit`` passed first) and the
        characters of the job's log written so far.
    """
    writer = JobLogWriter(hook, submission_id, log)
    state = poll_until_done(
        hook,
        submission_id,
        log=log,
        poll_interval=poll_interval,
        unreachable_timeout=unreachable_timeout,
        job_timeout=job_timeout,
        writer=writer if stream_logs else None,
        wait_limit=wait_limit,
    )
    return state, writer.offset


def no_retry_reason(
    exit_code: int | None,
    reported: ReportedError | None,
    *,
    exit_codes: Collection[int],
    errors: Collection[str],
) -> str | None:
    """Why a failed job must not be retried, or None when a retry may help.

    Args:
        exit_code: the entrypoint's exit code, when known.
        reported: the error the job reported in its ``RAYLINE_ERROR`` line.
        exit_codes: exit codes that mean bad input.
        errors: error kinds that fail the same way every time.
    """
    if exit_code is not None and exit_code in exit_codes:
        return f"exit code {exit_code} means bad input"
    if reported is not None and reported.error in errors:
        return f"{reported.error} fails the same way every time"
    return None


def job_seconds(hook: RayJobHook, submission_id: str) -> float | None:
    """The job's run time as Ray measured it (the workflow's per-step timings show it)."""
    try:
        state = hook.get_job_state(submission_id)
    except RayJobApiError:
        return None
    return state.seconds if state is not None else None
