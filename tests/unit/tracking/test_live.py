"""The ``live`` alias: moved onto the served version, and never a reason for a deploy to fail."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from rayline.tracking.errors import TrackingError
from rayline.tracking.live import apply_live_alias, find_model_version, mark_live
from rayline.tracking.settings import TrackingSettings


@dataclass
class FakeRegistry:
    """Registered model versions tagged with Rayline versions, and one model's aliases."""

    versions: list[Any] = field(default_factory=list)
    aliases: dict[str, int] = field(default_factory=dict)
    moves: list[tuple[str, str]] = field(default_factory=list)

    def add(self, rayline_version: int) -> None:
        number = str(len(self.versions) + 1)
        tags = {"rayline.version": str(rayline_version)}
        self.versions.append(SimpleNamespace(version=number, tags=tags, run_id=f"run-{number}"))

    def search_model_versions(self, filter_string: str, max_results: int) -> list[Any]:
        return list(self.versions)

    def get_registered_model(self, name: str) -> Any:
        return SimpleNamespace(aliases=dict(self.aliases))

    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
        self.aliases[alias] = int(version)
        self.moves.append((alias, version))


def test_the_alias_goes_to_the_mlflow_version_of_the_rayline_version() -> None:
    registry = FakeRegistry()
    for rayline_version in (1, 2, 3):
        registry.add(rayline_version)
    assert apply_live_alias(registry, "m", 2) is True  # type: ignore[arg-type]
    assert registry.aliases == {"live": 2}
    assert apply_live_alias(registry, "m", 2) is False  # type: ignore[arg-type]
    assert apply_live_alias(registry, "m", 1) is True  # type: ignore[arg-type]
    assert registry.moves == [("live", "2"), ("live", "1")]


def test_a_rayline_version_mlflow_lacks_is_named() -> None:
    registry = FakeRegistry()
    registry.add(1)
    assert find_model_version(registry, "m", 2) is None  # type: ignore[arg-type]
    with pytest.raises(TrackingError, match="no model version of m version 2"):
        apply_live_alias(registry, "m", 2)  # type: ignore[arg-type]
    assert registry.moves == []


def test_tracking_off_sets_nothing_and_says_nothing() -> None:
    said: list[str] = []
    off = TrackingSettings(tracking_uri="")
    assert mark_live("m", 1, settings=off, progress=said.append) is None
    assert said == []


def test_mlflow_down_is_said_and_never_raised() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{sock.getsockname()[1]}"
    said: list[str] = []
    failure = mark_live("m", 4, settings=TrackingSettings(tracking_uri=uri), progress=said.append)
    assert failure is not None and said == [failure]
    assert "m version 4" in failure and "unreachable" in failure
    assert "rayline models sync-mlflow m" in failure
