"""`rayline models list|show` on a real (SQLite) metadata store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from rayline.cli import models as cli
from rayline.config import get_settings
from rayline.metadata import ModelRegistry, create_engine_for, upgrade


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    monkeypatch.setenv("RAYLINE_DATABASE_URL", url)
    monkeypatch.setattr(cli, "console", Console(width=200))
    get_settings.cache_clear()
    upgrade(url)
    yield url
    get_settings.cache_clear()


def register(url: str, name: str, accuracy: float) -> None:
    engine = create_engine_for(url)
    ModelRegistry().register_version(
        engine, name=name, artifact_uri=f"s3://b/{name}/v", sha256="0" * 64,
        framework="xgboost", task="classification",
        metrics={"validation_accuracy": accuracy}, params={"max_depth": 3},
        signature={"inputs": [{"name": "f0", "type": "double"}], "output": {}},
        dataset_uri="sklearn:iris", dataset_sha256="1" * 64, code_version="rayline 0.1.0",
    )  # fmt: skip
    engine.dispose()


def test_list_and_show(database: str) -> None:
    register(database, "iris", 0.9)
    register(database, "iris", 0.95)
    register(database, "wine", 0.8)
    runner = CliRunner()

    out = runner.invoke(cli.app, ["list"])
    assert out.exit_code == 0, out.output
    assert "iris" in out.output and "wine" in out.output

    out = runner.invoke(cli.app, ["list", "iris"])
    assert "validation_accuracy=0.95" in out.output

    out = runner.invoke(cli.app, ["show", "iris"])
    assert out.exit_code == 0, out.output
    assert "version 2" in out.output and "0.95" in out.output and "max_depth" in out.output

    out = runner.invoke(cli.app, ["show", "iris:1"])
    assert "version 1" in out.output and "0.9" in out.output and "f0 (double)" in out.output


def test_unknown_model_and_version(database: str) -> None:
    register(database, "iris", 0.9)
    runner = CliRunner()
    out = runner.invoke(cli.app, ["show", "nope"])
    assert out.exit_code == 1 and "not registered" in out.output
    out = runner.invoke(cli.app, ["show", "iris:7"])
    assert out.exit_code == 1 and "no version 7" in out.output
    out = runner.invoke(cli.app, ["show", "iris:latest"])
    assert out.exit_code == 2


def test_empty_store(database: str) -> None:
    out = CliRunner().invoke(cli.app, ["list"])
    assert out.exit_code == 0 and "no models registered" in out.output


def test_list_on_a_fresh_home_migrates_instead_of_failing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rayline.cli import deployments

    monkeypatch.setenv("RAYLINE_DATABASE_URL", f"sqlite:///{tmp_path / 'never-migrated.db'}")
    get_settings.cache_clear()
    try:
        models = CliRunner().invoke(cli.app, ["list"])
        listed = CliRunner().invoke(deployments.app, ["list"])
    finally:
        get_settings.cache_clear()
    assert models.exit_code == 0 and "no models registered yet" in models.output
    assert listed.exit_code == 0 and "no deployments are active" in listed.output


def test_show_names_the_mlflow_run_or_how_to_make_one(database: str) -> None:
    register(database, "iris", 0.9)
    register(database, "iris", 0.95)
    engine = create_engine_for(database)
    ModelRegistry().set_mlflow_run_id(engine, name="iris", version=2, run_id="abc123")
    engine.dispose()
    runner = CliRunner()
    assert "abc123" in runner.invoke(cli.app, ["show", "iris:2"]).output
    assert "sync-mlflow" in runner.invoke(cli.app, ["show", "iris:1"]).output


def test_sync_mlflow_needs_tracking_on(database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAYLINE_MLFLOW_TRACKING_URI", raising=False)
    out = CliRunner().invoke(cli.app, ["sync-mlflow"])
    assert out.exit_code == 2 and "RAYLINE_MLFLOW_TRACKING_URI" in out.output


def test_sync_mlflow_says_an_unreachable_server_and_fails(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    register(database, "iris", 0.9)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("RAYLINE_MLFLOW_TRACKING_URI", uri)
    out = CliRunner().invoke(cli.app, ["sync-mlflow", "iris"])
    assert out.exit_code == 1 and "unreachable" in out.output
    engine = create_engine_for(database)
    assert ModelRegistry().get_version(engine, name="iris", version=1).mlflow_run_id is None
    engine.dispose()


def test_sync_mlflow_of_an_unknown_model_is_an_error(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAYLINE_MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    out = CliRunner().invoke(cli.app, ["sync-mlflow", "nope"])
    assert out.exit_code == 1 and "not registered" in out.output
