"""scikit-learn end to end through `rayline train SPEC --cluster ID`, then `rayline models show`.

The spec reads a CSV from the S3 server; the registered artifact is reloaded
and must predict what the job predicted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from rayline.cli import models, train
from rayline.config import get_settings
from rayline.metadata import ModelRegistry
from rayline.models import load_model
from rayline.storage import open_store
from tests.integration.training.conftest import TrainingEnv
from tests.integration.training.data import regression_frame, to_csv

pytestmark = pytest.mark.integration


@pytest.fixture
def cli_env(training_env: TrainingEnv, monkeypatch: pytest.MonkeyPatch) -> Iterator[TrainingEnv]:
    """The CLI reads everything from RAYLINE_* like a user's shell would."""
    settings = training_env.settings
    monkeypatch.setenv("RAYLINE_CLUSTER_MANAGER_URL", training_env.manager.url)
    monkeypatch.setenv("RAYLINE_API_TOKEN", training_env.manager.token)
    monkeypatch.setenv("RAYLINE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("RAYLINE_ARTIFACT_URI", settings.artifact_uri)
    monkeypatch.setattr(models, "console", Console(width=200))
    get_settings.cache_clear()
    yield training_env
    get_settings.cache_clear()


def test_sklearn_from_s3_csv_through_the_cli(cli_env: TrainingEnv, tmp_path: Path) -> None:
    uri = cli_env.s3_put("data/reg.csv", to_csv(regression_frame()))
    spec = tmp_path / "reg.yaml"
    spec.write_text(
        f"spec_version: 1\nname: reg-sklearn\ndataset: {uri}\ntarget: y\n"
        "task: regression\nframework: sklearn\n"
        "hyperparameters: {estimator: random_forest, n_estimators: 50}\n"
    )
    app = typer.Typer()
    app.command()(train.train)

    out = CliRunner().invoke(app, [str(spec), "--cluster", cli_env.cluster.id])

    assert out.exit_code == 0, out.output
    assert "registered reg-sklearn version 1" in out.output
    assert "validation_r2" in out.output
    assert "[rayline] data ready" in out.output  # the job's logs were streamed
    assert "training in process" in out.output  # sklearn: no Ray Train worker group
    assert "sklearn: fitting RandomForestRegressor" in out.output  # in the job's driver
    # The cluster was given, so it was not deleted. (UNHEALTHY until the reaper's next
    # pass when one of its health probes missed the dashboard while the job loaded the host.)
    assert cli_env.client.get_cluster(cli_env.cluster.id).state in ("READY", "UNHEALTHY")

    row = ModelRegistry().get_version(cli_env.engine, name="reg-sklearn", version=1)
    assert row.metrics["validation_r2"] > 0.5
    assert row.dataset_uri == uri and row.framework == "sklearn"
    store = open_store(settings=cli_env.settings)
    version_id = row.artifact_uri.rsplit("/", 1)[1]
    predictor = load_model(store, "reg-sklearn", version_id, expected_manifest_sha256=row.sha256)
    assert predictor.signature.task == "regression"
    example = json.loads(store.get_bytes(f"reg-sklearn/{version_id}/input_example.json"))
    assert len(example["rows"]) == len(example["predictions"]) == 5
    assert predictor.predict(example["rows"]) == pytest.approx(example["predictions"])

    shown = CliRunner().invoke(models.app, ["show", "reg-sklearn:1"])
    assert shown.exit_code == 0, shown.output
    assert uri in shown.output and "n_estimators" in shown.output


def test_wrong_target_fails_before_any_cluster_is_requested(
    cli_env: TrainingEnv, tmp_path: Path
) -> None:
    uri = cli_env.s3_put("data/reg-wrong.csv", to_csv(regression_frame(rows=50)))
    spec = tmp_path / "wrong.yaml"
    spec.write_text(
        f"spec_version: 1\nname: wrong-target\ndataset: {uri}\ntarget: price\n"
        "task: regression\nframework: sklearn\nhyperparameters: {estimator: linear}\n"
    )
    before = {c.id for c in cli_env.client.list_clusters().data}
    app = typer.Typer()
    app.command()(train.train)

    out = CliRunner().invoke(app, [str(spec)])  # no --cluster: it would request one

    assert out.exit_code == 2, out.output
    assert "'price' is not in dataset" in out.output and "'y'" in out.output
    assert "requested cluster" not in out.output
    assert {c.id for c in cli_env.client.list_clusters().data} == before
