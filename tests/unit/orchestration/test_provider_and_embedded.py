"""Provider metadata names importable classes; the embedded helpers build Airflow settings."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from rayline.orchestration.dags import DAGS_FOLDER
from rayline.orchestration.embedded import airflow_environment, rayline_connection_environment
from rayline.orchestration.provider import get_provider_info


def test_provider_info_points_at_real_hooks_and_modules() -> None:
    info = get_provider_info()
    for connection in info["connection-types"]:
        module, _, name = connection["hook-class-name"].rpartition(".")
        hook = getattr(importlib.import_module(module), name)
        assert hook.conn_type == connection["connection-type"]
    for kind in ("hooks", "operators", "sensors", "triggers"):
        for entry in info[kind]:
            for module in entry["python-modules"]:
                importlib.import_module(module)


def test_airflow_environment_keeps_everything_under_home(tmp_path: Path) -> None:
    env = airflow_environment(tmp_path)
    assert env["AIRFLOW_HOME"] == str(tmp_path)
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(DAGS_FOLDER)
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{tmp_path / 'airflow.db'}"
    assert (DAGS_FOLDER / "rayline_train_and_serve.py").is_file()


def test_connection_environment_is_the_json_form() -> None:
    env = rayline_connection_environment("http://127.0.0.1:8765", "secret")
    assert json.loads(env["AIRFLOW_CONN_RAYLINE_DEFAULT"]) == {
        "conn_type": "rayline",
        "host": "127.0.0.1",
        "port": 8765,
        "schema": "http",
        "password": "secret",
    }
    no_token = json.loads(
        rayline_connection_environment("https://cm.example")["AIRFLOW_CONN_RAYLINE_DEFAULT"]
    )
    assert no_token == {"conn_type": "rayline", "host": "cm.example", "schema": "https"}


def test_the_fernet_key_is_made_once_and_kept_private(tmp_path: Path) -> None:
    from cryptography.fernet import Fernet

    from rayline.orchestration.embedded import _fernet_key

    key = _fernet_key(tmp_path / "fernet.key")

    assert _fernet_key(tmp_path / "fernet.key") == key
    assert (tmp_path / "fernet.key").stat().st_mode & 0o777 == 0o600
    assert Fernet(key.encode()).decrypt(Fernet(key.encode()).encrypt(b"x")) == b"x"
