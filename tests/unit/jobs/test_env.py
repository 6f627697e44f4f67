"""The job environment: the stores' settings, the job's own cluster, nothing more."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from rayline.config import Settings
from rayline.jobs.env import job_env

GCS = "127.0.0.1:6380"


def _settings(tmp_path: Path, **fields: object) -> Settings:
    return Settings(
        home=tmp_path,
        database_url="postgresql+psycopg://u:pw@127.0.0.1:5432/db",
        artifact_uri="s3://bucket/models",
        s3_endpoint_url="http://127.0.0.1:59000",
        s3_access_key_id=SecretStr("AKIA"),
        s3_secret_access_key=SecretStr("s3cr3t"),
        **fields,  # type: ignore[arg-type]
    )


def test_train_env_carries_the_stores_and_the_own_cluster(tmp_path: Path) -> None:
    env = job_env(_settings(tmp_path), "train", ray_address=GCS)
    assert env["RAY_ADDRESS"] == GCS
    assert env["RAYLINE_ARTIFACT_URI"] == "s3://bucket/models"
    assert env["RAYLINE_S3_SECRET_ACCESS_KEY"] == "s3cr3t"
    assert env["RAYLINE_DATABASE_URL"].endswith("/db")
    assert all(isinstance(v, str) for v in env.values())
    # Ray Train's controller polls faster than its 2 s default (reports wait for a poll).
    assert 0 < float(env["RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"]) < 2


def test_no_address_no_ray_address(tmp_path: Path) -> None:
    assert "RAY_ADDRESS" not in job_env(_settings(tmp_path), "train", ray_address=None)


def test_train_env_never_carries_the_managers_token(tmp_path: Path) -> None:
    settings = _settings(tmp_path, api_token=SecretStr("manager-token"))
    env = job_env(settings, "train", ray_address=GCS)
    assert "manager-token" not in env.values()
    assert not any("TOKEN" in name for name in env)
    assert "RAYLINE_CLUSTER_MANAGER_URL" not in env


def test_deploy_env_adds_the_manager_and_serving(tmp_path: Path) -> None:
    settings = _settings(tmp_path, api_token=SecretStr("manager-token"))
    env = job_env(settings, "deploy", ray_address=GCS)
    assert env["RAY_ADDRESS"] == GCS
    assert env["RAYLINE_CLUSTER_MANAGER_URL"] == settings.cluster_manager_url
    assert env["RAYLINE_API_TOKEN"] == "manager-token"
    assert env["RAYLINE_SERVING_MODE"] == str(settings.serving_mode)
    assert "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S" not in env


def test_only_the_known_secrets_travel(tmp_path: Path) -> None:
    """Secrets in the env are exactly the stores' keys and (deploy) the token."""
    settings = _settings(tmp_path, api_token=SecretStr("manager-token"))
    secret_names = {
        name
        for kind in ("train", "deploy")
        for name in job_env(settings, kind, ray_address=GCS)  # type: ignore[arg-type]
        if any(word in name for word in ("SECRET", "TOKEN", "PASSWORD", "KEY"))
    }
    assert secret_names == {
        "RAYLINE_S3_ACCESS_KEY_ID",
        "RAYLINE_S3_SECRET_ACCESS_KEY",
        "RAYLINE_API_TOKEN",
    }


@pytest.mark.parametrize("kind", ["train", "deploy"])
def test_no_s3_keys_when_none_are_set(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Settings read the environment too: CI sources the services' S3 keys into it.
    for name in ("RAYLINE_S3_ACCESS_KEY_ID", "RAYLINE_S3_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    env = job_env(Settings(home=tmp_path), kind, ray_address=None)  # type: ignore[arg-type]
    assert "RAYLINE_S3_SECRET_ACCESS_KEY" not in env


def test_train_env_carries_explicit_data_roots_only(tmp_path: Path) -> None:
    assert "RAYLINE_DATA_ROOTS" not in job_env(_settings(tmp_path), "train", ray_address=GCS)
    settings = _settings(tmp_path, data_roots="/data,/mnt/shared")
    env = job_env(settings, "train", ray_address=GCS)
    assert env["RAYLINE_DATA_ROOTS"] == "/data,/mnt/shared"


@pytest.mark.parametrize("kind", ["train", "deploy"])
def test_both_jobs_carry_the_tracking_settings_and_credentials(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Training logs the MLflow run; a deploy moves the registered model's `live` alias.
    monkeypatch.setenv("RAYLINE_MLFLOW_TRACKING_URI", "http://127.0.0.1:55500")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "mlflow-token")
    env = job_env(_settings(tmp_path), kind, ray_address=GCS)  # type: ignore[arg-type]
    assert env["RAYLINE_MLFLOW_TRACKING_URI"] == "http://127.0.0.1:55500"
    assert env["MLFLOW_TRACKING_TOKEN"] == "mlflow-token"
