"""The environment the stack gives its processes, and ``stack.env`` (no process is started)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from rayline.stack.config import StackConfig, load_secrets
from rayline.stack.environment import process_environment, write_user_env
from tests.unit.stack.helpers import stack_config

_STACK_NAMES = ("RAYLINE_STACK", "RAYLINE_HOME", "RAYLINE_PG_PORT", "RAYLINE_S3_PORT")


def test_processes_get_the_stack_settings_and_none_of_the_callers_airflow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", "/elsewhere")
    monkeypatch.setenv("AIRFLOW_HOME", "/elsewhere")
    monkeypatch.setenv("RAYLINE_SERVING_MODE", "ray")
    config = stack_config(tmp_path)
    secrets = load_secrets(tmp_path / "stack")

    env = process_environment(config, secrets)

    assert "AIRFLOW__CORE__DAGS_FOLDER" not in env
    assert env["AIRFLOW_HOME"] == str(tmp_path / "stack" / "airflow")
    assert env["RAYLINE_DATABASE_URL"].endswith("@127.0.0.1:55432/rl_meta")
    assert env["RAYLINE_ARTIFACT_URI"] == "s3://bkt/artifacts"
    assert env["RAYLINE_CLUSTER_MANAGER_URL"] == "http://127.0.0.1:18775"
    assert env["RAYLINE_SERVING_MODE"] == "ray"  # the caller's Rayline choices pass through
    connection = json.loads(env["AIRFLOW_CONN_RAYLINE_DEFAULT"])
    assert (connection["host"], connection["port"]) == ("127.0.0.1", 18775)
    assert connection["password"] == secrets.manager_token.get_secret_value()


def test_the_processes_environment_names_the_stack_although_it_moves_rayline_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = stack_config(tmp_path)
    env = process_environment(config, load_secrets(tmp_path / "stack"))
    assert env["RAYLINE_HOME"] == str(config.rayline_home)
    for name in [n for n in os.environ if n.startswith(_STACK_NAMES)]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith("RAYLINE_"):
            monkeypatch.setenv(name, value)

    assert StackConfig.from_env() == config


def test_the_user_env_file_is_private_and_sourceable(tmp_path: Path) -> None:
    config = stack_config(tmp_path)
    env = process_environment(config, load_secrets(tmp_path / "stack"))

    write_user_env(config, env)

    path = tmp_path / "stack" / "stack.env"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = path.read_text().splitlines()
    assert all(line.startswith("export ") for line in lines)
    assert "export RAYLINE_API_PORT=18775" in lines
    assert not any("AIRFLOW_CONN" in line for line in lines)


def test_a_shell_that_sourced_stack_env_finds_the_same_stack(tmp_path: Path) -> None:
    """`source stack.env` then `rayline ...`: the stack's paths are its own, not under its home."""
    config = stack_config(tmp_path)
    write_user_env(config, process_environment(config, load_secrets(tmp_path / "stack")))
    probe = (
        "from rayline.stack import StackConfig; c = StackConfig.from_env(); "
        "print(c.state_dir, c.manager_port, c.database, c.rayline_home, sep='|')"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(_STACK_NAMES)}
    done = subprocess.run(
        ["bash", "-c", f'source "$1" && exec "$2" -c "{probe}"', "sh",
         str(tmp_path / "stack" / "stack.env"), sys.executable],
        env={**clean, "RAYLINE_HOME": str(tmp_path / "elsewhere")},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    state_dir, port, database, home = done.stdout.strip().split("|")
    assert Path(state_dir) == config.state_dir
    assert (int(port), database) == (config.manager_port, config.database)
    assert Path(home) == config.rayline_home
    assert (config.state_dir / "secrets.json").is_file()  # where `workflow run` reads it
