"""One client that submits Rayline's jobs to a Ray cluster and follows them to the end.

Built on Ray's ``JobSubmissionClient``; the CLI, the Airflow hook and serving
all use it::

    client = JobClient.for_cluster(cluster, manager)  # with the cluster's Ray token
    outcome = client.run(TrainRequest(spec=spec), on_output=print)
    outcome.result.version  # the registered model version (an int)

Every failure to reach or use the job API is a :class:`JobApiError`.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

from pydantic import BaseModel

from rayline.clusters.ray_auth import auth_headers
from rayline.jobs.env import job_env
from rayline.jobs.output import read_output
from rayline.jobs.requests import DeployRequest, TrainRequest
from rayline.jobs.results import DeleteResult, DeployResult, TrainResult
from rayline.jobs.states import TERMINAL_STATUSES, JobOutcome, JobState

if TYPE_CHECKING:
    from ray.job_submission import JobSubmissionClient

    from rayline.clusters.client import ClusterManagerClient
    from rayline.clusters.schemas import ClusterPublic
    from rayline.config import Settings

__all__ = ["TERMINAL_STATUSES", "JobApiError", "JobClient", "JobOutcome", "JobState"]

_STATUS_POLL_SECONDS = 0.5

R = TypeVar("R", bound=BaseModel)
JobRequest = TrainRequest | DeployRequest


class JobApiError(Exception):
    """The Ray job API cannot be reached, refused a call, or a follow timed out."""


class JobClient:
    """Submit, follow, inspect and stop jobs on one Ray cluster.

    Args:
        job_api_url: The cluster's job API (``ClusterPublic.job_api_url``).
        ray_address: The cluster's GCS address (``ClusterPublic.head_address``);
            the job's processes address their cluster by it (default: the job API URL).
        auth_token: The cluster's Ray token (``ClusterCredentials.ray_auth_token``),
            sent as ``Authorization: Bearer`` with every call; see `for_cluster`.
    """

    def __init__(
        self, job_api_url: str, *, ray_address: str | None = None, auth_token: str | None = None
    ) -> None:
        self.job_api_url = job_api_url.rstrip("/")
        self.ray_address = ray_address or self.job_api_url
        self._auth_token = auth_token
        self._sdk: JobSubmissionClient | None = None

    @classmethod
    def for_cluster(cls, cluster: ClusterPublic, manager: ClusterManagerClient) -> JobClient:
        """The client of a READY Rayline cluster, with the token the manager hands out.

        Raises:
            JobApiError: The cluster has no job API yet.
            ClusterManagerError: The manager refused the cluster's credentials.
        """
        if cluster.job_api_url is None:
            raise JobApiError(f"cluster {cluster.id} is {cluster.state.value}: no job API yet")
        token = manager.cluster_credentials(cluster.id).ray_auth_token
        return cls(cluster.job_api_url, ray_address=cluster.head_address, auth_token=token)

    @property
    def headers(self) -> dict[str, str]:
        """The HTTP headers of every call (the token; secret, never log them)."""
        return auth_headers(self._auth_token)

    @property
    def sdk(self) -> JobSubmissionClient:
        """Ray's client (made on first use: it checks that the API answers)."""
        if self._sdk is None:
            # Imported here: Ray is heavy, and the CLI and DAG files must load fast.
            from ray.job_submission import JobSubmissionClient

            try:
                self._sdk = JobSubmissionClient(self.job_api_url, headers=self.headers)
            except (ConnectionError, RuntimeError, OSError) as err:
                raise JobApiError(
                    f"cannot reach the Ray job API at {self.job_api_url}: {err}; "
                    "is the cluster READY?"
                ) from None
        return self._sdk

    def runtime_env(self, request: JobRequest, settings: Settings) -> dict[str, Any]:
        """The job's ``runtime_env``: its settings and its own cluster's address."""
        return {"env_vars": job_env(settings, request.kind, ray_address=self.ray_address)}

    def submit(
        self,
        request: JobRequest,
        *,
        settings: Settings | None = None,
        submission_id: str | None = None,
        ship_code: bool = False,
    ) -> str:
        """Submit a train or deploy job.

        Args:
            request: What the job does.
            settings: Whose stores the job uses (default: this process's settings).
            submission_id: The Ray job id (default: ``<kind>-<model>-<random>``).
            ship_code: Upload this process's ``rayline`` package with the job
                (``runtime_env.py_modules``), for clusters without it installed.

        Returns:
            The submission id.

        Raises:
            JobApiError: The job API refused the job or cannot be reached.
        """
        if settings is None:
            from rayline.config import get_settings

            settings = get_settings()
        name = request.spec.name if isinstance(request, TrainRequest) else request.model
        slug = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:40]
        submission_id = submission_id or f"{request.kind}-{slug}-{secrets.token_hex(4)}"
        if isinstance(request, TrainRequest) and request.run_name is None:
            request = request.model_copy(update={"run_name": submission_id})
        runtime_env = self.runtime_env(request, settings)
        if ship_code:
            import rayline

            runtime_env["py_modules"] = [str(Path(rayline.__file__).parent)]
        return self.submit_entrypoint(
            entrypoint=request.entrypoint(),
            submission_id=submission_id,
            runtime_env=runtime_env,
            metadata={"rayline.kind": request.kind, "rayline.model": name[:63]},
        )

    def submit_entrypoint(
        self,
        *,
        entrypoint: str,
        submission_id: str | None = None,
        runtime_env: dict[str, Any] | None = None,
        metadata: dict[str, str] | None = None,
        entrypoint_num_cpus: float | None = None,
        entrypoint_resources: dict[str, float] | None = None,
    ) -> str:
        """Submit any shell command as a job; returns its submission id.

        Raises:
            JobApiError: The job API refused the job (e.g. the id is taken) or
                cannot be reached.
        """
        try:
            return self.sdk.submit_job(
                entrypoint=entrypoint,
                submission_id=submission_id,
                runtime_env=runtime_env,
                metadata=metadata,
                entrypoint_num_cpus=entrypoint_num_cpus,
                entrypoint_resources=entrypoint_resources,
            )
        except (RuntimeError, ConnectionError, OSError) as err:
            raise JobApiError(
                f"the Ray job API at {self.job_api_url} refused job {submission_id}: {err}"
            ) from None

    def state(self, submission_id: str) -> JobState | None:
        """The job's state, or None when the cluster knows no such job.

        Raises:
            JobApiError: The job API did not answer.
        """
        try:
            info = self.sdk.get_job_info(submission_id)
        except RuntimeError as err:
            # The SDK folds every HTTP error into RuntimeError("... status code N: ...").
            if "status code 404" in str(err):
                return None
            raise JobApiError(f"cannot read job {submission_id}: {err}") from None
        except (ConnectionError, OSError) as err:
            raise JobApiError(
                f"cannot reach the Ray job API at {self.job_api_url}: {err}"
            ) from None
        return JobState(
            submission_id=submission_id,
            status=str(info.status),
            message=info.message or "",
            error_type=info.error_type,
            driver_exit_code=getattr(info, "driver_exit_code", None),
            start_time=info.start_time,
            end_time=info.end_time,
        )

    def logs(self, submission_id: str) -> str:
        """Everything the job's driver printed so far.

        Raises:
            JobApiError: The job API did not answer or knows no such job.
        """
        try:
            return self.sdk.get_job_logs(submission_id)
        except (RuntimeError, ConnectionError, OSError) as err:
            raise JobApiError(f"cannot read the logs of job {submission_id}: {err}") from None

    def stop(self, submission_id: str) -> bool:
        """Ask Ray to stop the job; False when it had already ended."""
        try:
            return bool(self.sdk.stop_job(submission_id))
        except (RuntimeError, ConnectionError, OSError) as err:
            raise JobApiError(f"cannot stop job {submission_id}: {err}") from None

    def follow(
        self,
        submission_id: str,
        result_type: type[R],
        *,
        on_output: Callable[[str], None] | None = None,
        timeout: float | None = None,
    ) -> JobOutcome[R]:
        """Stream a job's log until it ends; return its status and typed result.

        Args:
            submission_id: The job to follow.
            result_type: The model of the job's ``RAYLINE_RESULT``.
            on_output: Called with each chunk of log text as it arrives.
            timeout: Give up following after this many seconds (the job carries on).

        Raises:
            JobApiError: The job API cannot be reached, or ``timeout`` passed.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            asyncio.run(_tail(self.sdk, submission_id, on_output, timeout))
        except TimeoutError:
            raise JobApiError(
                f"job {submission_id} still runs after {timeout:g} s; it carries on (stop it "
                f"with `ray job stop --address {self.job_api_url} {submission_id}`)"
            ) from None
        except RuntimeError:
            pass  # the log stream broke off: the status poll below still finds the end
        status = self._wait_terminal(submission_id, deadline)
        logs = self.logs(submission_id)
        output = read_output(logs, result_type)
        return JobOutcome(submission_id, status, output.result, output.error, logs)

    @overload
    def run(
        self,
        request: TrainRequest,
        *,
        settings: Settings | None = ...,
        on_output: Callable[[str], None] | None = ...,
        timeout: float | None = ...,
    ) -> JobOutcome[TrainResult]: ...

    @overload
    def run(
        self,
        request: DeployRequest,
        *,
        settings: Settings | None = ...,
        on_output: Callable[[str], None] | None = ...,
        timeout: float | None = ...,
    ) -> JobOutcome[DeployResult] | JobOutcome[DeleteResult]: ...

    def run(
        self,
        request: JobRequest,
        *,
        settings: Settings | None = None,
        on_output: Callable[[str], None] | None = None,
        timeout: float | None = None,
    ) -> JobOutcome[Any]:
        """Submit ``request`` and follow it to the end (see :meth:`submit`, :meth:`follow`)."""
        submission_id = self.submit(request, settings=settings)
        if on_output is not None:
            on_output(f"[rayline] submitted job {submission_id} to {self.job_api_url}\n")
        return self.follow(
            submission_id, result_type_of(request), on_output=on_output, timeout=timeout
        )

    def _wait_terminal(self, submission_id: str, deadline: float | None) -> str:
        while True:
            state = self.state(submission_id)
            if state is None:
                raise JobApiError(
                    f"the Ray job API at {self.job_api_url} knows no job {submission_id}"
                )
            if state.is_terminal:
                return state.status
            if deadline is not None and time.monotonic() > deadline:
                raise JobApiError(f"job {submission_id} is still {state.status}; it carries on")
            time.sleep(_STATUS_POLL_SECONDS)


def result_type_of(request: JobRequest) -> type[BaseModel]:
    """The model of the result the job of ``request`` prints."""
    if isinstance(request, TrainRequest):
        return TrainResult
    return DeleteResult if request.action == "delete" else DeployResult


async def _tail(
    sdk: JobSubmissionClient,
    submission_id: str,
    on_output: Callable[[str], None] | None,
    timeout: float | None,
) -> None:
    async def stream() -> None:
        async for chunk in sdk.tail_job_logs(submission_id):
            if on_output is not None:
                on_output(chunk)

    await asyncio.wait_for(stream(), timeout)
