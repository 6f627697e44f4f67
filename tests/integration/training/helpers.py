"""Submit a training job to the shared cluster and check what it left behind."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest

from rayline.clusters.ray_auth import auth_headers
from rayline.config import Settings
from rayline.jobs.client import JobClient, JobOutcome
from rayline.jobs.env import job_env
from rayline.jobs.requests import TRAIN_MODULE, TrainRequest, entrypoint
from rayline.jobs.results import TrainResult
from rayline.metadata import ModelNotFoundError, ModelRegistry
from rayline.storage import open_store
from rayline.training.spec import load_spec
from tests.integration.training.conftest import TrainingEnv

JOB_TIMEOUT = 900


def spec_for(name: str, dataset: str, **fields: Any) -> dict[str, Any]:
    """A minimal valid spec dict; ``fields`` override or add."""
    spec: dict[str, Any] = {
        "spec_version": 1,
        "name": name,
        "dataset": dataset,
        "target": "label",
        "task": "classification",
        "framework": "xgboost",
    }
    spec.update(fields)
    return spec


def _echo(chunk: str) -> None:
    sys.stdout.write(chunk)


def run_job(
    env: TrainingEnv,
    spec: dict[str, Any],
    *,
    settings: Settings | None = None,
    on_output: Callable[[str], None] | None = _echo,
    **kwargs: Any,
) -> JobOutcome[TrainResult]:
    """Submit through `JobClient` and follow to the end (logs echoed for -s).

    ``kwargs`` are `TrainRequest` fields (``workflow_run_id``, ``run_name``).
    """
    client = JobClient.for_cluster(env.cluster, env.client)
    request = TrainRequest(spec=load_spec(spec), **kwargs)
    job = client.submit(request, settings=settings or env.settings)
    return client.follow(job, TrainResult, on_output=on_output, timeout=JOB_TIMEOUT)


def run_raw_job(
    env: TrainingEnv, spec_text: str, *, on_output: Callable[[str], None] | None = _echo
) -> JobOutcome[TrainResult]:
    """Submit an unchecked spec text, bypassing the request's validation."""
    token = env.client.cluster_credentials(env.cluster.id).ray_auth_token
    client = JobClient(env.job_api_url, auth_token=token)
    job = client.submit_entrypoint(
        entrypoint=entrypoint(TRAIN_MODULE, ["--spec", spec_text]),
        runtime_env={"env_vars": job_env(env.settings, "train", ray_address=client.ray_address)},
    )
    return client.follow(job, TrainResult, on_output=on_output, timeout=JOB_TIMEOUT)


def assert_failed_without_version(
    env: TrainingEnv, outcome: JobOutcome[TrainResult], name: str, kind: str, *words: str
) -> None:
    """The job failed with ``kind``, its message names ``words``, nothing was registered."""
    assert outcome.status == "FAILED", outcome.logs[-3000:]
    assert outcome.result is None
    assert outcome.error is not None, outcome.logs[-3000:]
    assert outcome.error.error == kind, outcome.error
    for word in words:
        assert word in outcome.error.message, outcome.error
    with pytest.raises(ModelNotFoundError):
        ModelRegistry().list_versions(env.engine, name=name)
    assert open_store(settings=env.settings).list_keys(name) == []
    assert env.settings.s3_secret_access_key is not None
    assert env.settings.s3_secret_access_key.get_secret_value() not in outcome.logs


def list_actors(env: TrainingEnv, **filters: str) -> list[Any]:
    """The cluster's actors (State API, with the cluster's token), ``field=value`` filtered."""
    from ray.util.state.api import StateApiClient
    from ray.util.state.common import ListApiOptions, StateResource

    assert env.cluster.dashboard_url is not None
    token = env.client.cluster_credentials(env.cluster.id).ray_auth_token
    client = StateApiClient(address=env.cluster.dashboard_url, headers=auth_headers(token))
    options = ListApiOptions(limit=10_000, filters=[(k, "=", v) for k, v in filters.items()])
    return list(client.list(StateResource.ACTORS, options=options, raise_on_missing_output=False))
