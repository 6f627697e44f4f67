"""`rayline workflow run` against a fake Airflow client and a real (SQLite) metadata store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from rayline.cli import stack as stack_cli
from rayline.cli import workflow as cli
from rayline.metadata.db import create_engine_for
from rayline.metadata.enums import WorkflowStatus
from rayline.metadata.migrate import upgrade
from rayline.metadata.workflows import finish_run, start_run

PARAMS = {
    "serving": {"value": {"port": None, "spec": {}, "sample_request": {"instances": [[1, 2]]}}}
}


class FakeClient:
    """Airflow's REST API as `rayline workflow run` uses it; the run ends at once."""

    def __init__(self, final_state: str, db_url: str) -> None:
        self.final_state = final_state
        self.db_url = db_url
        self.triggered: dict[str, Any] = {}
        self.unpaused = False
        self.base_url = "http://af"

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def get_dag(self, dag_id: str) -> dict[str, Any]:
        return {"dag_id": dag_id, "params": PARAMS}

    def unpause(self, dag_id: str) -> None:
        self.unpaused = True

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> dict[str, Any]:
        self.triggered = conf
        engine = create_engine_for(self.db_url)  # what the DAG's callbacks record
        run = start_run(engine, dag_id=dag_id, external_run_id="manual__1", params=conf)
        if self.final_state == "success":
            finish_run(engine, run.id, status=WorkflowStatus.SUCCESS)
        else:
            error = "task train failed: bad dataset"
            finish_run(engine, run.id, status=WorkflowStatus.FAILED, error=error)
        engine.dispose()
        return {"dag_run_id": "manual__1"}

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return {"state": self.final_state}

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        if self.final_state == "success":
            return []
        return [{"task_id": "train", "state": "failed", "try_number": 1}]

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        return {
            "endpoint_url": "http://127.0.0.1:9123",
            "model": "iris",
            "version": 3,
            "deployment_id": "dep-1",
            "predictions": [0, 2],
        }


class FakeStack:
    def __init__(self, client: FakeClient) -> None:
        self.client = client

    def airflow_client(self) -> FakeClient:
        return self.client

    def metadata_url(self) -> str:
        return self.client.db_url


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'rayline.db'}"
    upgrade(url)
    return url


def _run(monkeypatch: pytest.MonkeyPatch, client: FakeClient, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(stack_cli, "load_stack", lambda state_dir=None: FakeStack(client))
    wide = Console(width=200)
    monkeypatch.setattr(cli, "console", wide)
    monkeypatch.setattr(cli, "err_console", wide)
    result = CliRunner().invoke(cli.app, ["run", *args])
    return result.exit_code, result.output


def _spec(tmp_path: Path) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text("name: iris\ndataset: sklearn:iris\n")
    return path


def test_a_successful_run_prints_model_endpoint_and_prediction(
    monkeypatch: pytest.MonkeyPatch, db_url: str, tmp_path: Path
) -> None:
    client = FakeClient("success", db_url)
    sample = tmp_path / "sample.json"
    sample.write_text(json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}))

    code, out = _run(
        monkeypatch, client, str(_spec(tmp_path)), "--port", "9123", "--sample", str(sample)
    )

    assert code == 0, out
    assert client.unpaused
    assert client.triggered["training"] == {"name": "iris", "dataset": "sklearn:iris"}
    assert client.triggered["serving"]["port"] == 9123
    assert client.triggered["serving"]["sample_request"] == {"instances": [[5.1, 3.5, 1.4, 0.2]]}
    assert "the run succeeded" in out
    assert "iris version 3" in out
    assert "http://127.0.0.1:9123" in out
    assert "[0, 2]" in out


def test_a_failed_run_exits_1_with_the_recorded_reason(
    monkeypatch: pytest.MonkeyPatch, db_url: str, tmp_path: Path
) -> None:
    code, out = _run(monkeypatch, FakeClient("failed", db_url), str(_spec(tmp_path)))

    assert code == 1
    assert "the run failed" in out
    assert "task train failed: bad dataset" in out
