"""`rayline stack up`'s check of the serving base image, on a fake Docker engine.

The real engine and base image are in `tests/integration/stack/test_serving_image.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker
import pytest
from docker.errors import ImageNotFound

from rayline.config import get_settings
from rayline.serving import base_image
from rayline.serving.base_image import BuildReport
from rayline.serving.errors import ImageBuildError
from rayline.stack.errors import StackError
from rayline.stack.serving_image import ensure_serving_base_image

ENV = {"DOCKER_HOST": "unix:///nowhere/docker.sock"}


class FakeImages:
    def __init__(self, tags: set[str]) -> None:
        self.tags = tags

    def get(self, tag: str) -> object:
        if tag not in self.tags:
            raise ImageNotFound(tag)
        return object()


class FakeEngine:
    def __init__(self, tags: set[str]) -> None:
        self.images = FakeImages(tags)
        self.closed = False
        self.seen: list[dict[str, Any]] = []  # how each client was made

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeEngine:
    monkeypatch.setenv("RAYLINE_HOME", str(tmp_path))
    monkeypatch.delenv("RAYLINE_SERVING_BASE_IMAGE", raising=False)
    get_settings.cache_clear()
    fake = FakeEngine(set())

    def client(**kwargs: Any) -> FakeEngine:
        fake.seen.append(kwargs)
        return fake

    monkeypatch.setattr(docker, "DockerClient", client)
    return fake


def own_tag() -> str:
    return base_image.resolve_base_image(get_settings())


def test_ray_mode_needs_no_image_and_no_engine(engine: FakeEngine) -> None:
    lines: list[str] = []
    ensure_serving_base_image({**ENV, "RAYLINE_SERVING_MODE": "ray"}, lines.append, lines.append)
    assert lines == []
    assert engine.seen == []


def test_an_image_in_the_engine_is_used_as_it_is(
    engine: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine.images.tags.add(own_tag())
    monkeypatch.setattr(base_image, "build_base_image", pytest.fail)
    lines: list[str] = []

    ensure_serving_base_image(ENV, lines.append, lines.append)

    assert lines == [f"serving base image {own_tag()}: in the engine"]
    assert engine.seen == [{"base_url": ENV["DOCKER_HOST"], "timeout": 3600}]
    assert engine.closed


def test_a_missing_own_image_is_built_with_its_progress_shown(
    engine: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def build(settings: Any, client: Any, *, progress: Any) -> BuildReport:
        assert client is engine
        progress("Step 1/4 : FROM rayline-rootfs")
        return BuildReport(tag=own_tag(), reused=False, steps={"build": 95.0})

    monkeypatch.setattr(base_image, "build_base_image", build)
    steps: list[str] = []
    details: list[str] = []

    ensure_serving_base_image({**ENV, "RAYLINE_SERVING_MODE": "auto"}, steps.append, details.append)

    assert steps[0].startswith(f"building the serving base image {own_tag()}")
    assert steps[-1] == f"built {own_tag()} in 95s"
    assert details == ["Step 1/4 : FROM rayline-rootfs"]


def test_a_failed_build_says_how_to_serve_without_docker(
    engine: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def build(*_: Any, **__: Any) -> BuildReport:
        raise ImageBuildError("debootstrap failed: no mirror")

    monkeypatch.setattr(base_image, "build_base_image", build)
    with pytest.raises(StackError, match=r"debootstrap failed.*RAYLINE_SERVING_MODE=ray"):
        ensure_serving_base_image(ENV, lambda _: None, lambda _: None)
    assert engine.closed


def test_a_named_image_that_is_missing_is_refused_with_the_fix(
    engine: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAYLINE_SERVING_BASE_IMAGE", "rayproject/ray:2.60.0")
    monkeypatch.setattr(base_image, "build_base_image", pytest.fail)
    with pytest.raises(
        StackError, match=r"RAYLINE_SERVING_BASE_IMAGE=rayproject/ray:2\.60\.0 is not"
    ):
        ensure_serving_base_image(
            {**ENV, "RAYLINE_SERVING_MODE": "docker"}, lambda _: None, lambda _: None
        )
