"""The Ray Serve runtime removes a deployment's metrics directory when it ends.

Serve itself is replaced by stand-ins: no cluster is started, only the
runtime's own bookkeeping around ``serve.run`` and ``serve.delete`` runs.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from ray import serve

from rayline.metadata import Deployment, DeploymentMode
from rayline.serving.errors import DeploymentFailedError
from rayline.serving.model import ServedModel
from rayline.serving.runtimes import StartRequest
from rayline.serving.runtimes.ray_serve import RayServeRuntime
from rayline.serving.spec import ServingSpec

DEPLOYMENT = "dp-0123456789ab"


@pytest.fixture(autouse=True)
def _private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> RayServeRuntime:
    runtime = RayServeRuntime(settings=None)  # type: ignore[arg-type]
    monkeypatch.setattr(runtime, "_connect", lambda: None)
    monkeypatch.setattr(runtime, "_serve_port", lambda request: 8000)
    monkeypatch.setattr(runtime, "_delete", lambda name: None)
    return runtime


def _request(tmp_path: Path) -> StartRequest:
    served = ServedModel(name="iris", version=1, version_id="v1", sha256="0" * 64)
    return StartRequest(
        deployment_id=DEPLOYMENT,
        served=served,
        store_uri=tmp_path.as_uri(),
        model_dir=tmp_path,
        spec=ServingSpec(),
        host="127.0.0.1",
        port=None,
        progress=lambda line: None,
    )


def _metrics_dirs(tmp_path: Path) -> list[Path]:
    return sorted(tmp_path.glob(f"rayline-metrics-{DEPLOYMENT}-*"))


def test_stop_removes_the_metrics_directory_the_start_made(
    runtime: RayServeRuntime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Any] = []
    monkeypatch.setattr(serve, "run", lambda app, **kwargs: seen.append(kwargs["name"]))

    runtime.start(_request(tmp_path))
    assert seen == [DEPLOYMENT]
    assert len(_metrics_dirs(tmp_path)) == 1

    deployment = Deployment(id=DEPLOYMENT, model_name="iris", mode=DeploymentMode.RAY)
    runtime.stop(deployment, drain_seconds=0)
    assert _metrics_dirs(tmp_path) == []


def test_a_failed_start_leaves_no_metrics_directory(
    runtime: RayServeRuntime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(app: Any, **kwargs: Any) -> None:
        raise RuntimeError("replica failed to start")

    monkeypatch.setattr(serve, "run", refuse)

    with pytest.raises(DeploymentFailedError, match="replica failed to start"):
        runtime.start(_request(tmp_path))
    assert _metrics_dirs(tmp_path) == []
