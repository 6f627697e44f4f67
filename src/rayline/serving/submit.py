"""Run the deploy job on a serving cluster from the Cluster Manager, and follow it.

The CLI (and Airflow) do::

    outcome = run_deploy_job(manager, ["--model", "iris:3"], on_output=print)
    outcome.result["url"]  # where the model answers

The job needs Rayline's settings on the cluster (metadata and artifact stores,
the Cluster Manager's address and token, the serving mode); they travel in the
job's ``runtime_env`` as ``RAYLINE_*`` variables. Ray shows a job's runtime env
to anyone who can read the cluster's job API: keep it on loopback. Nothing here
prints or logs those values.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rayline.clusters.schemas import ClusterCreate, ClusterPublic, Purpose, ResourceSpec
from rayline.serving.errors import DeploymentFailedError

if TYPE_CHECKING:
    from rayline.clusters.client import ClusterManagerClient
    from rayline.config import Settings
    from rayline.training.submit import JobOutcome

__all__ = [
    "DeployOutcome",
    "deploy_entrypoint",
    "deploy_env_vars",
    "run_deploy_job",
    "serving_cluster",
    "submit_deploy_job",
]

_SERVING_SETTINGS = (
    "serving_mode",
    "serving_base_image",
    "serving_host",
    "serving_start_timeout_seconds",
    "serving_switch_grace_seconds",
)
_COORDINATION_SETTINGS = (
    "zookeeper_hosts",
    "zookeeper_root",
    "zookeeper_session_timeout_seconds",
)
_READY_TIMEOUT_SECONDS = 600.0


@dataclass(frozen=True)
class DeployOutcome:
    """Which cluster ran the deploy job, and how the job ended."""

    cluster: ClusterPublic
    job: JobOutcome

    @property
    def result(self) -> dict[str, Any] | None:
        """The job's ``RAYLINE_RESULT`` (the deployment), if it succeeded."""
        return self.job.result


def deploy_env_vars(settings: Settings) -> dict[str, str]:
    """The variables the deploy job needs (values are secret: never print them)."""
    from rayline.clusters.auth import resolve_token
    from rayline.training.submit import job_env_vars

    env = job_env_vars(settings)
    env["RAYLINE_CLUSTER_MANAGER_URL"] = settings.cluster_manager_url
    token = resolve_token(settings)
    if token is not None:
        env["RAYLINE_API_TOKEN"] = token.get_secret_value()
    for name in _SERVING_SETTINGS:
        env[f"RAYLINE_{name.upper()}"] = str(getattr(settings, name))
    if settings.zookeeper_hosts:  # The deploy holds the model's lock
        for name in _COORDINATION_SETTINGS:
            env[f"RAYLINE_{name.upper()}"] = str(getattr(settings, name))
    if "DOCKER_HOST" in os.environ:
        env["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
    return env


def deploy_entrypoint(args: Sequence[str]) -> str:
    """``python -m rayline.jobs.deploy ARGS...``, quoted for a shell."""
    return shlex.join(["python", "-m", "rayline.jobs.deploy", *args])


def serving_cluster(
    manager: ClusterManagerClient,
    cluster_id: str | None = None,
    *,
    timeout: float = _READY_TIMEOUT_SECONDS,
    on_output: Callable[[str], None] | None = None,
) -> ClusterPublic:
    """The READY serving cluster to deploy on: the one named, a ready one, or a new one."""
    if cluster_id is None:
        ready = manager.list_clusters(purpose="serving", state="READY").data
        if ready:
            return ready[0]
        created = manager.create_cluster(
            ClusterCreate(name="serving", purpose=Purpose.SERVING, head=ResourceSpec(cpus=2))
        )
        cluster_id = created.id
        if on_output is not None:
            on_output(f"[rayline] asked for serving cluster {cluster_id}; waiting until READY\n")
    return manager.wait_until_ready(cluster_id, timeout=timeout)


def submit_deploy_job(
    job_api_url: str,
    args: Sequence[str],
    *,
    settings: Settings | None = None,
    submission_id: str | None = None,
) -> str:
    """Submit ``python -m rayline.jobs.deploy ARGS`` through Ray's job API.

    Returns:
        The submission id.

    Raises:
        DeploymentFailedError: The job API cannot be reached or refused the job.
    """
    from ray.job_submission import JobSubmissionClient

    if settings is None:
        from rayline.config import get_settings

        settings = get_settings()
    what = next((a for a in args if not a.startswith("-")), "deploy")
    slug = re.sub(r"[^a-z0-9-]+", "-", what.lower()).strip("-")[:40]
    try:
        return JobSubmissionClient(job_api_url).submit_job(
            entrypoint=deploy_entrypoint(args),
            submission_id=submission_id or f"deploy-{slug}-{secrets.token_hex(4)}",
            runtime_env={"env_vars": deploy_env_vars(settings)},
            metadata={"rayline.kind": "deploy"},
        )
    except (RuntimeError, ConnectionError, OSError) as err:
        raise DeploymentFailedError(
            f"the Ray job API at {job_api_url} refused the deploy job: {err}; is the cluster READY?"
        ) from None


def run_deploy_job(
    manager: ClusterManagerClient,
    args: Sequence[str],
    *,
    cluster_id: str | None = None,
    settings: Settings | None = None,
    on_output: Callable[[str], None] | None = None,
    timeout: float | None = None,
) -> DeployOutcome:
    """Pick or create a serving cluster, run the deploy job there, follow it to the end.

    Args:
        manager: Client of the Cluster Manager.
        args: Arguments of ``python -m rayline.jobs.deploy`` (``--cluster-id`` is added).
        cluster_id: The serving cluster (default: a READY one, else a new one).
        settings: Whose stores the job uses (default: this process's).
        on_output: Called with the job's log text as it arrives.
        timeout: Stop following after this many seconds (the job carries on).

    Raises:
        DeploymentFailedError: The job could not be submitted or followed.
    """
    from rayline.training.errors import TrainingJobError
    from rayline.training.submit import follow

    cluster = serving_cluster(manager, cluster_id, on_output=on_output)
    assert cluster.job_api_url is not None  # READY clusters have one
    job_id = submit_deploy_job(
        cluster.job_api_url, [*args, "--cluster-id", cluster.id], settings=settings
    )
    try:
        job = follow(cluster.job_api_url, job_id, on_output=on_output, timeout=timeout)
    except TrainingJobError as err:  # the follower is shared with training jobs
        raise DeploymentFailedError(str(err)) from None
    return DeployOutcome(cluster=cluster, job=job)
