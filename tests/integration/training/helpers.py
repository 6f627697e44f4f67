"""Submit a training job to the shared cluster and check what it left behind."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest
from ray.job_submission import JobSubmissionClient

from rayline.config import Settings
from rayline.metadata import ModelNotFoundError, ModelRegistry
from rayline.storage import open_store
from rayline.training.submit import (
    JobOutcome,
    follow,
    job_env_vars,
    submit_training,
    training_entrypoint,
)
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
) -> JobOutcome:
    """Submit through `submit_training` and follow to the end (logs echoed for -s)."""
    job = submit_training(env.job_api_url, spec, settings=settings or env.settings, **kwargs)
    return follow(env.job_api_url, job, on_output=on_output, timeout=JOB_TIMEOUT)


def run_raw_job(
    env: TrainingEnv, spec_text: str, *, on_output: Callable[[str], None] | None = _echo
) -> JobOutcome:
    """Submit an unchecked spec text, bypassing the client's validation."""
    jobs = JobSubmissionClient(env.job_api_url)
    job = jobs.submit_job(
        entrypoint=training_entrypoint(spec_text),
        runtime_env={"env_vars": job_env_vars(env.settings)},
    )
    return follow(env.job_api_url, job, on_output=on_output, timeout=JOB_TIMEOUT)


def assert_failed_without_version(
    env: TrainingEnv, outcome: JobOutcome, name: str, kind: str, *words: str
) -> None:
    """The job failed with ``kind``, its message names ``words``, nothing was registered."""
    assert outcome.status == "FAILED", outcome.logs[-3000:]
    assert outcome.result is None
    assert outcome.error is not None, outcome.logs[-3000:]
    assert outcome.error["error"] == kind, outcome.error
    for word in words:
        assert word in outcome.error["message"], outcome.error
    with pytest.raises(ModelNotFoundError):
        ModelRegistry().list_versions(env.engine, name=name)
    assert open_store(settings=env.settings).list_keys(name) == []
    assert env.settings.s3_secret_access_key is not None
    assert env.settings.s3_secret_access_key.get_secret_value() not in outcome.logs
