"""`rayline train SPEC --cluster ID` and `rayline models show` against the real stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from rayline.cli import models, train
from rayline.config import get_settings
from tests.integration.training.conftest import TrainingEnv

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


def test_train_on_a_given_cluster_then_show_the_model(cli_env: TrainingEnv, tmp_path: Path) -> None:
    spec = tmp_path / "iris.yaml"
    spec.write_text(
        "spec_version: 1\nname: iris-cli\ndataset: sklearn:iris\ntarget: target\n"
        "task: classification\nframework: sklearn\n"
        "hyperparameters: {estimator: random_forest, n_estimators: 20}\n"
    )
    app = typer.Typer()
    app.command()(train.train)

    out = CliRunner().invoke(app, [str(spec), "--cluster", cli_env.cluster.id])

    assert out.exit_code == 0, out.output
    assert "registered iris-cli version 1" in out.output
    assert "validation_accuracy" in out.output
    assert "[rayline] data ready" in out.output  # the job's logs were streamed

    shown = CliRunner().invoke(models.app, ["show", "iris-cli:1"])
    assert shown.exit_code == 0, shown.output
    assert "sklearn:iris" in shown.output and "n_estimators" in shown.output
    # The cluster was given, so it was not deleted.
    assert cli_env.client.get_cluster(cli_env.cluster.id).state == "READY"
