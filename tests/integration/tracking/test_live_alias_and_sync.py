"""MLflow's ``live`` alias follows deploys and rollbacks; MLflow down loses no Rayline version.

Real MLflow servers (Postgres store, S3 artifacts), real Postgres metadata and a
real S3 artifact store; the Deployer is the real one, with the serving unit
tests' fake runtime and service discovery (no containers: the alias is what is
tested). The outage test stops and restarts a server of its own, never the
shared one.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient
from sqlalchemy import URL, Engine
from typer.testing import CliRunner

from rayline.cli.models import app as models_app
from rayline.config import Settings, get_settings
from rayline.jobs.output import read_output
from rayline.jobs.results import TrainResult
from rayline.jobs.train import main as train_main
from rayline.metadata import (
    DeploymentMode,
    DeploymentStatus,
    ModelRegistry,
    create_engine_for,
    upgrade,
)
from rayline.serving.deployer import Deployer
from rayline.storage import ArtifactStore, open_store
from rayline.tracking.live import find_model_version, live_alias_hook
from rayline.tracking.settings import TrackingSettings
from rayline.tracking.sync import sync_models
from tests.integration.tracking.conftest import MlflowServer
from tests.unit.serving.fakes import FakeManager, FakeRuntime
from tests.unit.serving.model_factory import publish_iris

pytestmark = pytest.mark.integration


@dataclass
class Stores:
    """Rayline's metadata and artifact stores for one test, as the jobs see them."""

    settings: Settings
    engine: Engine
    store: ArtifactStore


@pytest.fixture
def stores(
    package_pg_url: URL, package_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Stores]:
    url = package_pg_url.render_as_string(hide_password=False)
    upgrade(url)
    artifacts = f"s3://{package_bucket}/artifacts"
    for key, value in {
        "RAYLINE_HOME": str(tmp_path / "home"),
        "RAYLINE_DATABASE_URL": url,
        "RAYLINE_ARTIFACT_URI": artifacts,
        "RAYLINE_SERVING_SWITCH_GRACE_SECONDS": "0",
    }.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    settings = get_settings()
    engine = create_engine_for(url)
    try:
        yield Stores(settings, engine, open_store(artifacts, settings))
    finally:
        engine.dispose()
        get_settings.cache_clear()


def _track(monkeypatch: pytest.MonkeyPatch, url: str) -> MlflowClient:
    monkeypatch.setenv("RAYLINE_MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("RAYLINE_MLFLOW_EXPERIMENT", f"it-{secrets.token_hex(4)}")
    monkeypatch.setenv("RAYLINE_MLFLOW_REQUIRED", "true")
    return MlflowClient(tracking_uri=url, registry_uri=url)


def _live(client: MlflowClient, name: str) -> str | None:
    """The Rayline version MLflow's ``live`` alias names."""
    aliases = client.get_registered_model(name).aliases
    if "live" not in aliases:
        return None
    return str(client.get_model_version(name, aliases["live"]).tags["rayline.version"])


def _deployer(stores: Stores, said: list[str]) -> Deployer:
    return Deployer(
        settings=stores.settings,
        engine=stores.engine,
        manager=FakeManager(),  # type: ignore[arg-type]
        mode=DeploymentMode.DOCKER,
        runtimes={DeploymentMode.DOCKER: FakeRuntime()},
        on_live=live_alias_hook(said.append),  # as the deploy job wires it
    )


def test_live_alias_follows_each_deploy_and_the_rollback(
    stores: Stores, mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    client = _track(monkeypatch, mlflow_server.url)
    name = f"alias-{secrets.token_hex(3)}"
    for variant in (0, 1):
        publish_iris(stores.store, stores.engine, tmp_path, name=name, variant=variant)
    synced = CliRunner().invoke(models_app, ["sync-mlflow", name])
    assert synced.exit_code == 0, synced.output
    said: list[str] = []
    deployer = _deployer(stores, said)
    try:
        deployer.deploy(f"{name}:1")
        assert _live(client, name) == "1", said
        deployer.deploy(f"{name}:2")
        assert _live(client, name) == "2", said
        back = deployer.rollback(name)
        assert back.model_version == 1
        assert _live(client, name) == "1", said
    finally:
        deployer.delete(name)
    assert not [line for line in said if "not set" in line]


def _train_while_mlflow_stops(
    server: MlflowServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[TrainResult, float]:
    """Run the training job in this process; the server stops after the second round."""
    import rayline.training.runner as runner

    real_run = runner.run_training

    def run_training(spec: Any, **kwargs: Any) -> Any:
        observer = kwargs["observer"]

        def on_iteration(step: int, metrics: dict[str, float]) -> None:
            if step == 3:
                server.script("down")
            observer.on_iteration(step, metrics)

        return real_run(spec, on_iteration=on_iteration, **kwargs)

    monkeypatch.setattr(runner, "run_training", run_training)
    monkeypatch.setenv("RAYLINE_MLFLOW_FLUSH_SECONDS", "0")  # each round is sent at once
    spec = {
        "spec_version": 1,
        "name": f"outage-{secrets.token_hex(3)}",
        "dataset": "sklearn:iris",
        "target": "target",
        "task": "classification",
        "framework": "xgboost",
        "hyperparameters": {"num_boost_round": 8, "max_depth": 2},
        "checkpoint_every": 1,  # a log line per round, to see where the outage fell
    }
    capsys.readouterr()
    started = time.monotonic()
    status = train_main(["--spec", json.dumps(spec)])
    took = time.monotonic() - started
    out = capsys.readouterr().out
    assert status == 0, out
    assert "tracking failed, run untracked" in out
    result = read_output(out, TrainResult).result
    assert result is not None, out
    return result, took


def test_mlflow_stopped_mid_run_keeps_the_version_and_sync_catches_up(
    stores: Stores,
    own_mlflow_server: MlflowServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    client = _track(monkeypatch, own_mlflow_server.url)
    result, took = _train_while_mlflow_stops(own_mlflow_server, monkeypatch, capsys)
    name = result.name
    assert result.tracking_error and "unreachable" in result.tracking_error
    assert took < 90, f"a dead MLflow stalled training for {took:.0f} s"
    row = ModelRegistry().get_version(stores.engine, name=name, version=1)
    assert row.mlflow_run_id == result.mlflow_run_id is not None

    # A second version, trained with tracking off, and deployed while MLflow is still down.
    publish_iris(stores.store, stores.engine, tmp_path, name=name, variant=1)
    said: list[str] = []
    deployer = _deployer(stores, said)
    try:
        live = deployer.deploy(f"{name}:2")
        assert live.status == DeploymentStatus.LIVE
        assert any("not set" in line and "sync-mlflow" in line for line in said), said

        own_mlflow_server.script("up")
        assert find_model_version(client, name, 1) is None
        assert client.get_run(result.mlflow_run_id).info.status == "RUNNING"
        synced = CliRunner().invoke(models_app, ["sync-mlflow", name])
        assert synced.exit_code == 0, synced.output

        first = find_model_version(client, name, 1)
        assert first is not None and first.run_id == result.mlflow_run_id
        assert first.tags["rayline.version_id"] == result.version_id
        run = client.get_run(result.mlflow_run_id)
        assert run.info.status == "FINISHED"
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "train-mlogloss")]
        assert steps == [1, 2]  # the rounds sent before the server stopped
        second = find_model_version(client, name, 2)
        stored = ModelRegistry().get_version(stores.engine, name=name, version=2).mlflow_run_id
        assert second is not None and stored == second.run_id
        assert client.get_run(second.run_id).data.tags["rayline.synced"] == "true"
        assert _live(client, name) == "2"

        again = sync_models(
            stores.engine,
            [name],
            settings=stores.settings,
            tracking=TrackingSettings(),
            client=client,
        )
        assert {item.action for item in again} == {"up to date"}, again
    finally:
        deployer.delete(name)
