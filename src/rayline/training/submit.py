"""Submit a training job to a Ray cluster and follow it to the end.

The CLI and the Airflow operator both use these two calls::

    submission_id = submit_training(cluster.job_api_url, spec)
    outcome = follow(cluster.job_api_url, submission_id, on_output=print)
    outcome.result["version"]  # the registered model version

The job needs Rayline's settings on the cluster (artifact store, S3 endpoint
and keys, metadata store); they travel in the job's ``runtime_env`` as
``RAYLINE_*`` variables. Note that Ray shows a job's runtime env to anyone who
can read the cluster's dashboard or job API: keep those on loopback or behind
authentication. Nothing here prints or logs them.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rayline.training.errors import TrainingJobError
from rayline.training.outcome import ERROR_MARKER, RESULT_MARKER, find_marker
from rayline.training.spec import TrainingSpec, load_spec

if TYPE_CHECKING:
    from ray.job_submission import JobSubmissionClient

    from rayline.config import Settings

__all__ = [
    "JobOutcome",
    "follow",
    "job_env_vars",
    "stop_training",
    "submit_training",
    "training_entrypoint",
]

_TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}
_STATUS_POLL_SECONDS = 0.5
_TRAIN_POLL_SECONDS = "0.25"


@dataclass(frozen=True)
class JobOutcome:
    """How a training job ended.

    Attributes:
        submission_id: The Ray job's submission id.
        status: Ray's final job status: ``SUCCEEDED``, ``FAILED`` or ``STOPPED``.
        result: The job's ``RAYLINE_RESULT`` (registered version, metrics...), if any.
        error: The job's ``RAYLINE_ERROR`` (``{"error": kind, "message": ...}``), if any.
        logs: Everything the job printed.
    """

    submission_id: str
    status: str
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    logs: str = field(default="", repr=False)

    @property
    def succeeded(self) -> bool:
        """True when the job succeeded and registered a model version."""
        return self.status == "SUCCEEDED" and self.result is not None

    def describe_failure(self) -> str:
        """One line saying why the job failed (the job's own error when it printed one)."""
        if self.error is not None:
            return f"{self.error.get('error')}: {self.error.get('message')}"
        tail = [line for line in self.logs.splitlines() if line.strip()][-1:]
        last = f"; last log line: {tail[0][:300]}" if tail else ""
        return f"job {self.submission_id} ended {self.status} without a result{last}"


def job_env_vars(settings: Settings) -> dict[str, str]:
    """The ``RAYLINE_*`` variables the job needs to reach the stores (values are secret)."""
    env = {
        "RAYLINE_ARTIFACT_URI": settings.artifact_uri,
        "RAYLINE_DATABASE_URL": settings.database_url,
        "RAYLINE_S3_REGION": settings.s3_region,
        "RAYLINE_S3_MULTIPART_THRESHOLD_MB": str(settings.s3_multipart_threshold_mb),
        "RAYLINE_S3_MULTIPART_CHUNK_MB": str(settings.s3_multipart_chunk_mb),
        "RAYLINE_S3_MAX_CONCURRENCY": str(settings.s3_max_concurrency),
        "PYTHONUNBUFFERED": "1",
        # Ray Train's controller polls its workers every 2 s by default, and a worker's
        # report waits in a one-slot queue for that poll: each checkpoint and the end of
        # training would cost up to 2 s. A poll is one small actor call per worker.
        "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": _TRAIN_POLL_SECONDS,
    }
    if settings.s3_endpoint_url:
        env["RAYLINE_S3_ENDPOINT_URL"] = settings.s3_endpoint_url
    if settings.s3_access_key_id and settings.s3_secret_access_key:
        env["RAYLINE_S3_ACCESS_KEY_ID"] = settings.s3_access_key_id.get_secret_value()
        env["RAYLINE_S3_SECRET_ACCESS_KEY"] = settings.s3_secret_access_key.get_secret_value()
    return env


def training_entrypoint(
    spec: TrainingSpec | str, *, run_name: str | None = None, workflow_run_id: int | None = None
) -> str:
    """The shell command of the job: ``python -m rayline.jobs.train --spec '<json>' ...``.

    ``spec`` may be raw JSON text, sent unchecked (tests use it to prove the job
    itself refuses a bad spec).
    """
    text = spec.to_json() if isinstance(spec, TrainingSpec) else spec
    parts = ["python", "-m", "rayline.jobs.train", "--spec", text]
    if run_name:
        parts += ["--run-name", run_name]
    if workflow_run_id is not None:
        parts += ["--workflow-run-id", str(workflow_run_id)]
    return shlex.join(parts)


def _client(job_api_url: str) -> JobSubmissionClient:
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(job_api_url)
    except (ConnectionError, RuntimeError, OSError) as err:
        raise TrainingJobError(
            f"cannot reach the Ray job API at {job_api_url}: {err}; is the cluster READY?"
        ) from None


def submit_training(
    job_api_url: str,
    spec: TrainingSpec | str | Path | dict[str, Any],
    *,
    settings: Settings | None = None,
    workflow_run_id: int | None = None,
    run_name: str | None = None,
    submission_id: str | None = None,
    ship_code: bool = False,
) -> str:
    """Submit a training job through Ray's Job Submission API.

    Args:
        job_api_url: The cluster's job API (``ClusterPublic.job_api_url``).
        spec: A spec, or what :func:`~rayline.training.spec.load_spec` reads.
        settings: Whose stores the job writes to (default: this process's settings).
        workflow_run_id: Recorded as the model version's lineage.
        run_name: Ray Train run name; re-submitting with the same name resumes
            that run from its last checkpoint (default: derived from the submission id).
        submission_id: The Ray job id (default: ``train-<name>-<random>``).
        ship_code: Upload this process's ``rayline`` package with the job
            (``runtime_env.py_modules``), for clusters that do not have it installed.

    Returns:
        The submission id.

    Raises:
        InvalidSpecError: The spec is invalid (nothing was submitted).
        TrainingJobError: The job API refused the job or cannot be reached.
    """
    if settings is None:
        from rayline.config import get_settings

        settings = get_settings()
    checked = load_spec(spec)
    slug = re.sub(r"[^a-z0-9-]+", "-", checked.name.lower()).strip("-")[:40]
    submission_id = submission_id or f"train-{slug}-{secrets.token_hex(4)}"
    runtime_env: dict[str, Any] = {"env_vars": job_env_vars(settings)}
    if ship_code:
        import rayline

        runtime_env["py_modules"] = [str(Path(rayline.__file__).parent)]
    client = _client(job_api_url)
    try:
        return client.submit_job(
            entrypoint=training_entrypoint(
                checked,
                run_name=run_name or submission_id,
                workflow_run_id=workflow_run_id,
            ),
            submission_id=submission_id,
            runtime_env=runtime_env,
            metadata={"rayline.kind": "training", "rayline.model": checked.name},
        )
    except (RuntimeError, ConnectionError, OSError) as err:
        raise TrainingJobError(f"the Ray job API at {job_api_url} refused the job: {err}") from None


def follow(
    job_api_url: str,
    submission_id: str,
    *,
    on_output: Callable[[str], None] | None = None,
    timeout: float | None = None,
) -> JobOutcome:
    """Stream a job's logs until it ends; return its status and result.

    Args:
        job_api_url: The cluster's job API.
        submission_id: From :func:`submit_training`.
        on_output: Called with each chunk of log text as it arrives.
        timeout: Give up following after this many seconds (the job carries on).

    Returns:
        The job's final status, its ``RAYLINE_RESULT``/``RAYLINE_ERROR`` and logs.

    Raises:
        TrainingJobError: The job API cannot be reached, or ``timeout`` passed.
    """
    client = _client(job_api_url)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        asyncio.run(_tail(client, submission_id, on_output, timeout))
    except TimeoutError:
        raise TrainingJobError(
            f"job {submission_id} still runs after {timeout:g} s; it carries on "
            f"(stop it with `ray job stop --address {job_api_url} {submission_id}`)"
        ) from None
    except RuntimeError:
        pass  # the log stream broke off: the status poll below still finds the end
    status = _wait_terminal(client, submission_id, deadline)
    logs = client.get_job_logs(submission_id)
    return JobOutcome(
        submission_id=submission_id,
        status=status,
        result=find_marker(logs, RESULT_MARKER),
        error=find_marker(logs, ERROR_MARKER),
        logs=logs,
    )


async def _tail(
    client: JobSubmissionClient,
    submission_id: str,
    on_output: Callable[[str], None] | None,
    timeout: float | None,
) -> None:
    async def stream() -> None:
        async for chunk in client.tail_job_logs(submission_id):
            if on_output is not None:
                on_output(chunk)

    await asyncio.wait_for(stream(), timeout)


def _wait_terminal(client: JobSubmissionClient, submission_id: str, deadline: float | None) -> str:
    while True:
        status = str(client.get_job_status(submission_id).value)
        if status in _TERMINAL:
            return status
        if deadline is not None and time.monotonic() > deadline:
            raise TrainingJobError(f"job {submission_id} is still {status}; it carries on")
        time.sleep(_STATUS_POLL_SECONDS)


def stop_training(job_api_url: str, submission_id: str) -> bool:
    """Ask Ray to stop a training job; True if it was still running."""
    return bool(_client(job_api_url).stop_job(submission_id))
