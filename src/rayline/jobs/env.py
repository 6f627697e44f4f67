"""The environment of a Rayline job on its cluster, built from settings in this one place.

A job reaches the stores through ``RAYLINE_*`` variables in its ``runtime_env``;
Ray hands them to the driver and to every worker and actor of the job. The
values are secret: nothing here prints or logs them. Ray shows a job's runtime
env to whoever can read the cluster's job API, so keep that API on loopback or
behind the cluster's token.

``RAY_ADDRESS`` names the job's own cluster. Ray sets it for the driver only;
actors that look the cluster up again (Ray Train's placement-group cleaner asks
the state API) would otherwise search the machine and fail with "Found
multiple active Ray instances" as soon as a second cluster runs beside it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Literal

from rayline.tracking.settings import job_env_vars as tracking_env_vars

if TYPE_CHECKING:
    from rayline.config import Settings

__all__ = ["JobKind", "job_env"]

JobKind = Literal["train", "deploy"]

# Ray Train's controller polls its workers every 2 s by default, and a worker's
# report waits in a one-slot queue for that poll: each checkpoint and the end of
# training would cost up to 2 s. A poll is one small actor call per worker.
_TRAIN_POLL_SECONDS = "0.25"

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


def job_env(settings: Settings, kind: JobKind, *, ray_address: str | None) -> dict[str, str]:
    """The variables a job of ``kind`` needs on its cluster.

    Args:
        settings: Whose stores the job uses.
        kind: ``train`` (artifact and metadata stores, MLflow) or ``deploy``
            (also the Cluster Manager, the serving and the coordination settings).
        ray_address: The job's own cluster: its GCS address (``host:port``) or
            its job API URL; set as ``RAY_ADDRESS`` for every process of the job.

    Returns:
        Variable name to value; every value is a string.
    """
    env = _store_env(settings)
    if ray_address:
        env["RAY_ADDRESS"] = ray_address
    # MLflow's URI and credentials, when tracking is on: training logs the run, a
    # deploy moves the registered model's `live` alias.
    env.update(tracking_env_vars())
    if kind == "train":
        env["RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"] = _TRAIN_POLL_SECONDS
    else:
        env.update(_deploy_env(settings))
    return env


def _store_env(settings: Settings) -> dict[str, str]:
    env = {
        "RAYLINE_ARTIFACT_URI": settings.artifact_uri,
        "RAYLINE_DATABASE_URL": settings.database_url,
        "RAYLINE_S3_REGION": settings.s3_region,
        "RAYLINE_S3_MULTIPART_THRESHOLD_MB": str(settings.s3_multipart_threshold_mb),
        "RAYLINE_S3_MULTIPART_CHUNK_MB": str(settings.s3_multipart_chunk_mb),
        "RAYLINE_S3_MAX_CONCURRENCY": str(settings.s3_max_concurrency),
        "PYTHONUNBUFFERED": "1",
    }
    if settings.data_roots:  # else the job's own defaults: its artifact root and cwd
        env["RAYLINE_DATA_ROOTS"] = settings.data_roots
    if settings.s3_endpoint_url:
        env["RAYLINE_S3_ENDPOINT_URL"] = settings.s3_endpoint_url
    if settings.s3_access_key_id and settings.s3_secret_access_key:
        env["RAYLINE_S3_ACCESS_KEY_ID"] = settings.s3_access_key_id.get_secret_value()
        env["RAYLINE_S3_SECRET_ACCESS_KEY"] = settings.s3_secret_access_key.get_secret_value()
    return env


def _deploy_env(settings: Settings) -> dict[str, str]:
    from rayline.clusters.auth import resolve_token

    env = {"RAYLINE_CLUSTER_MANAGER_URL": settings.cluster_manager_url}
    # The deploy job registers the endpoint with the Cluster Manager.
    token = resolve_token(settings)
    if token is not None:
        env["RAYLINE_API_TOKEN"] = token.get_secret_value()
    for name in _SERVING_SETTINGS:
        env[f"RAYLINE_{name.upper()}"] = str(getattr(settings, name))
    if settings.zookeeper_hosts:  # the deploy holds the model's lock
        for name in _COORDINATION_SETTINGS:
            env[f"RAYLINE_{name.upper()}"] = str(getattr(settings, name))
    if "DOCKER_HOST" in os.environ:
        env["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
    return env
