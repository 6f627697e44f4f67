"""Extra labels cannot override Rayline's own labels on model containers and images."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from rayline.config import Settings
from rayline.serving import model_image
from rayline.serving.model import ServedModel
from rayline.serving.runtimes import docker
from rayline.serving.runtimes.base import StartRequest
from rayline.serving.spec import ServingSpec

FORGED = {"rayline.deployment": "someone-else", "rayline.sha256": "0" * 64, "team": "ml"}
SERVED = ServedModel(name="iris", version=3, version_id="v3", sha256="a" * 64, framework="sklearn")


class _Containers:
    def __init__(self) -> None:
        self.kwargs: dict[str, Any] = {}

    def run(self, image: str, **kwargs: Any) -> Any:
        self.kwargs = kwargs
        return SimpleNamespace(name=kwargs["name"], id="c1")


def run_container(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    spec: ServingSpec | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Start a container of SERVED through DockerRuntime on a fake 2-CPU engine.

    Returns the keyword arguments ``containers.run`` got.
    """
    monkeypatch.setattr(
        docker,
        "build_model_image",
        lambda client, **kwargs: SimpleNamespace(tag="rayline-model-iris:3", reused=True),
    )
    monkeypatch.setattr(docker, "resolve_base_image", lambda settings: "base")
    client = SimpleNamespace(containers=_Containers(), info=lambda: {"NCPU": 2})
    runtime = docker.DockerRuntime(Settings(home=tmp_path), client=client)
    request = StartRequest(
        deployment_id="dp-1",
        served=SERVED,
        store_uri="file:///x",
        model_dir=tmp_path,
        spec=spec or ServingSpec(),
        host="127.0.0.1",
        port=None,
        labels=labels or {},
        progress=lambda line: None,
    )
    runtime._run(request, 9000, images_block(), {})
    return client.containers.kwargs


def test_container_labels_keep_rayline_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kwargs = run_container(tmp_path, monkeypatch, labels=FORGED)

    labels = kwargs["labels"]
    assert labels["rayline.deployment"] == "dp-1"
    assert labels["rayline.sha256"] == "a" * 64
    assert labels["team"] == "ml"


def images_block() -> Any:
    from rayline.clusters.backends.ports import PortBlock
    from rayline.clusters.backends.ray_nodes import ports_needed

    return PortBlock(31000, ports_needed(1, 100))


def test_image_labels_keep_rayline_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wanted: dict[str, str] = {}
    existing = SimpleNamespace(id="img", labels=None)
    monkeypatch.setattr(model_image, "get_image", lambda client, tag: existing)
    monkeypatch.setattr(
        model_image, "_labels_match", lambda have, want: bool(wanted.update(want)) or True
    )
    client = SimpleNamespace(images=SimpleNamespace(get=lambda base: SimpleNamespace(id="b")))

    model_image.build_model_image(
        client,
        base="base",
        model_dir=tmp_path,
        config_json="{}",
        name="iris",
        version=3,
        sha256="a" * 64,
        labels=FORGED,
        progress=lambda line: None,
    )

    assert wanted["rayline.sha256"] == "a" * 64 and wanted["team"] == "ml"
