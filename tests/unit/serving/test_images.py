"""Image recipes: pinned requirements, tags, reuse decisions, cached wheels."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest

from rayline.config import Settings
from rayline.serving import base_image, model_image, wheelhouse
from rayline.serving.errors import ImageBuildError
from rayline.serving.requirements import Pin, requirements_digest, serving_requirements


@pytest.fixture(scope="module")
def pins() -> list[Pin]:
    return serving_requirements()


def test_requirements_are_the_installed_versions_of_a_closed_set(pins: list[Pin]) -> None:
    names = {p.name for p in pins}
    assert {"ray", "fastapi", "uvicorn", "xgboost", "scikit-learn", "pandas", "pyarrow"} <= names
    assert {"numpy", "scipy", "starlette", "pydantic-core", "grpcio"} <= names  # dependencies
    assert not any(n.startswith("nvidia-") for n in names)  # GPU-only, left out
    assert "apache-airflow" not in names and "sqlalchemy" not in names
    for pin in pins:
        assert metadata.version(pin.name) == pin.version
    assert pins == sorted(pins) and len(names) == len(pins)


def test_a_missing_distribution_says_how_to_fix_it() -> None:
    with pytest.raises(ImageBuildError, match="uv sync --frozen"):
        serving_requirements(("surely-not-installed-dist",))


def test_digest_follows_every_input(pins: list[Pin]) -> None:
    assert requirements_digest(pins, "x") == requirements_digest(list(reversed(pins)), "x")
    assert requirements_digest(pins, "x") != requirements_digest(pins, "y")
    assert requirements_digest(pins[1:], "x") != requirements_digest(pins, "x")


def test_base_image_tag_and_setting() -> None:
    plan = base_image.base_image_plan(Settings())
    assert plan.tag.startswith("rayline-serving-base:0.1.0-") and len(plan.tag.split("-")[-1]) == 12
    assert plan.rootfs_tag.startswith("rayline-rootfs:bookworm-")
    assert base_image.resolve_base_image(Settings()) == plan.tag
    custom = Settings(serving_base_image="rayproject/ray:2.60.0-deps")
    assert base_image.resolve_base_image(custom) == "rayproject/ray:2.60.0-deps"


def test_model_image_tags_are_valid_docker_names() -> None:
    assert model_image.model_image_tag("iris", 3) == "rayline-model-iris:3"
    assert model_image.model_image_tag("Iris_V2.x", 1) == "rayline-model-iris_v2.x:1"


def test_code_digest_is_stable() -> None:
    assert model_image.code_digest() == model_image.code_digest()


def test_reuse_needs_every_rayline_label_to_match() -> None:
    wanted = {"rayline.sha256": "a", "rayline.code-sha256": "b", "other": "ignored"}
    assert model_image._labels_match({"rayline.sha256": "a", "rayline.code-sha256": "b"}, wanted)
    assert not model_image._labels_match(
        {"rayline.sha256": "a", "rayline.code-sha256": "c"}, wanted
    )
    assert not model_image._labels_match({"rayline.sha256": "a"}, wanted)


def test_cached_wheels_are_not_downloaded_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wanted = [Pin("six", "1.17.0"), Pin("pydantic-core", "2.50.5")]
    for name in (
        "six-1.17.0-py2.py3-none-any.whl",
        "pydantic_core-2.50.5-cp311-cp311-manylinux_2_17_x86_64.whl",
    ):
        (tmp_path / name).write_bytes(b"")

    def no_pip(*args: object, **kwargs: object) -> None:
        raise AssertionError("pip must not run when every wheel is cached")

    monkeypatch.setattr(wheelhouse, "run_command", no_pip)
    found = wheelhouse.ensure_wheels(wanted, tmp_path)
    assert [p.name.split("-")[0] for p in found] == ["six", "pydantic_core"]


def test_missing_wheels_are_downloaded_with_exact_pins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []

    def fake_pip(command: list[str], *, what: str) -> None:
        calls.append(command)
        (tmp_path / "six-1.17.0-py2.py3-none-any.whl").write_bytes(b"")

    monkeypatch.setattr(wheelhouse, "run_command", fake_pip)
    wheelhouse.ensure_wheels([Pin("six", "1.17.0")], tmp_path)
    [command] = calls
    assert "download" in command and "--no-deps" in command and "--only-binary=:all:" in command
    assert "--platform=manylinux2014_x86_64" in command and command[-1] == "six==1.17.0"


def test_a_wheel_pip_did_not_bring_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wheelhouse, "run_command", lambda command, *, what: None)
    with pytest.raises(ImageBuildError, match=r"no wheel was downloaded for six==1\.17\.0"):
        wheelhouse.ensure_wheels([Pin("six", "1.17.0")], tmp_path)
