"""Unit tests of the environment the stack gives its processes (no process is started)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from rayline.stack.config import load_secrets
from rayline.stack.stack import Stack
from tests.unit.stack.helpers import stack_config


def _stack(tmp_path: Path) -> Stack:
    return Stack(stack_config(tmp_path))


def test_processes_get_the_stack_settings_and_none_of_the_callers_airflow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", "/elsewhere")
    monkeypatch.setenv("AIRFLOW_HOME", "/elsewhere")
    monkeypatch.setenv("RAYLINE_SERVING_MODE", "ray")
    stack = _stack(tmp_path)
    secrets = load_secrets(tmp_path / "stack")

    env = stack._environment(secrets)

    assert "AIRFLOW__CORE__DAGS_FOLDER" not in env
    assert env["AIRFLOW_HOME"] == str(tmp_path / "stack" / "airflow")
    assert env["RAYLINE_DATABASE_URL"].endswith("@127.0.0.1:55432/rl_meta")
    assert env["RAYLINE_ARTIFACT_URI"] == "s3://bkt/artifacts"
    assert env["RAYLINE_CLUSTER_MANAGER_URL"] == "http://127.0.0.1:18775"
    assert env["RAYLINE_SERVING_MODE"] == "ray"  # the caller's Rayline choices pass through
    connection = json.loads(env["AIRFLOW_CONN_RAYLINE_DEFAULT"])
    assert (connection["host"], connection["port"]) == ("127.0.0.1", 18775)
    assert connection["password"] == secrets.manager_token.get_secret_value()


def test_the_user_env_file_is_private_and_sourceable(tmp_path: Path) -> None:
    stack = _stack(tmp_path)
    env = stack._environment(load_secrets(tmp_path / "stack"))

    stack._write_user_env(env)

    path = tmp_path / "stack" / "stack.env"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = path.read_text().splitlines()
    assert all(line.startswith("export ") for line in lines)
    assert "export RAYLINE_API_PORT=18775" in lines
    assert not any("AIRFLOW_CONN" in line for line in lines)
