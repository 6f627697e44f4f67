"""Unit tests of the stack's configuration: environment, secrets, services.env."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from rayline.stack.config import StackConfig, load_secrets, read_services_env


def test_defaults_live_under_rayline_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("RAYLINE_STACK_DIR", "RAYLINE_STACK_AIRFLOW_PORT", "RAYLINE_STACK_DATABASE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RAYLINE_HOME", str(tmp_path))

    config = StackConfig.from_env()

    assert config.state_dir == tmp_path / "stack"
    assert config.airflow_home == tmp_path / "stack" / "airflow"
    assert config.airflow_url == "http://127.0.0.1:8080"
    assert (config.database, config.airflow_database) == ("rayline", "airflow")
    assert config.artifact_uri == "s3://rayline/artifacts"


def test_environment_overrides_ports_and_names(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RAYLINE_STACK_AIRFLOW_PORT", "18080")
    monkeypatch.setenv("RAYLINE_STACK_MANAGER_PORT", "18775")
    monkeypatch.setenv("RAYLINE_STACK_DATABASE", "rl_test")
    monkeypatch.setenv("RAYLINE_STACK_BUCKET", "rl-test")

    config = StackConfig.from_env(tmp_path / "s")

    assert config.state_dir == (tmp_path / "s").resolve()
    assert config.manager_url == "http://127.0.0.1:18775"
    assert config.airflow_port == 18080
    assert config.database == "rl_test"
    assert config.artifact_uri == "s3://rl-test/artifacts"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RAYLINE_STACK_DATABASE", 'x"; DROP DATABASE rayline; --'),
        ("RAYLINE_STACK_AIRFLOW_PORT", "80"),
    ],
)
def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)

    with pytest.raises(ValueError, match=name):
        StackConfig.from_env()


def test_secrets_are_generated_once_and_private(tmp_path: Path) -> None:
    first = load_secrets(tmp_path)
    again = load_secrets(tmp_path)

    path = tmp_path / "secrets.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first == again
    assert len(first.manager_token.get_secret_value()) >= 32
    assert first.airflow_admin_password.get_secret_value() not in repr(first)


def test_an_older_secrets_file_gets_the_new_secrets_and_keeps_its_own(tmp_path: Path) -> None:
    import json

    first = load_secrets(tmp_path)
    path = tmp_path / "secrets.json"
    older = json.loads(path.read_text())
    del older["zookeeper_password"]
    path.write_text(json.dumps(older))

    upgraded = load_secrets(tmp_path)

    assert upgraded.airflow_fernet_key == first.airflow_fernet_key  # never replaced
    assert len(upgraded.zookeeper_password.get_secret_value()) >= 24
    assert load_secrets(tmp_path) == upgraded  # written back once
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_missing_secrets_say_to_bring_the_stack_up(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="rayline stack up"):
        load_secrets(tmp_path, create=False)


def test_services_env_is_parsed(tmp_path: Path) -> None:
    (tmp_path / "services.env").write_text(
        "export RAYLINE_PG_URL=postgresql+psycopg://rayline:pw=1@127.0.0.1:55432/rayline\n"
        "export DOCKER_HOST=unix:///x/docker.sock\n"
    )

    values = read_services_env(tmp_path)

    assert values["RAYLINE_PG_URL"].endswith("pw=1@127.0.0.1:55432/rayline")
    assert values["DOCKER_HOST"] == "unix:///x/docker.sock"
