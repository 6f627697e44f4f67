"""`rayline workflow list|show` on a real (SQLite) metadata store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from rayline.cli import workflow as cli
from rayline.config import get_settings
from rayline.metadata.migrate import upgrade
from rayline.orchestration import recording

# Not tests.unit.orchestration.fakes: importing it imports Airflow, which must be
# configured first (tests/unit/orchestration/conftest.py) when this runs first.
DAG_ID = "rayline_train_and_serve"
RUN_ID = "manual__2026-01-01T00:00:00+00:00"


class FakeTI:
    """What the recording callbacks read of a task instance."""

    def __init__(self, task_id: str, *, try_number: int = 1) -> None:
        self.dag_id = DAG_ID
        self.run_id = RUN_ID
        self.task_id = task_id
        self.try_number = try_number
        self.map_index = -1

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        return None


class Task:
    """Only its type name is recorded."""


class Dag:
    dag_id = DAG_ID


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    monkeypatch.setenv("RAYLINE_DATABASE_URL", url)
    monkeypatch.setattr(cli, "console", Console(width=250))
    monkeypatch.setattr(cli, "err_console", Console(width=250, stderr=True))
    get_settings.cache_clear()
    upgrade(url)
    yield url
    get_settings.cache_clear()


def _context(ti: FakeTI, **extra: Any) -> dict[str, Any]:
    return {"ti": ti, "task": Task(), "params": {}, **extra}


def test_list_and_show_a_failed_run_with_its_steps(database: str) -> None:
    recording.step_succeeded(_context(FakeTI("create_training_cluster")))
    train = FakeTI("train")
    recording.step_started(_context(train))
    recording.step_failed(_context(train, exception=RuntimeError("dataset not found: x.csv")))
    recording.run_failed({"dag": Dag(), "run_id": RUN_ID, "ti": train, "reason": "task_failure"})
    runner = CliRunner()

    out = runner.invoke(cli.app, ["list"])
    assert out.exit_code == 0, out.output
    assert RUN_ID in out.output and "failed" in out.output

    for ref in ("1", RUN_ID):
        out = runner.invoke(cli.app, ["show", ref])
        assert out.exit_code == 0, out.output
        assert "create_training_cluster" in out.output and "train" in out.output
        assert "dataset not found: x.csv" in out.output

    out = runner.invoke(cli.app, ["list", "--status", "success"])
    assert out.exit_code == 0 and RUN_ID not in out.output


def test_unknown_run_is_a_clear_error(database: str) -> None:
    out = CliRunner().invoke(cli.app, ["show", "42"])
    assert out.exit_code == 1
    assert "no workflow run '42' is recorded" in out.output


def test_no_runs_yet(database: str) -> None:
    out = CliRunner().invoke(cli.app, ["list"])
    assert out.exit_code == 0 and "no workflow runs recorded yet" in out.output
