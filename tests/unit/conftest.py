"""Unit tests never see the machine's Rayline state: each gets its own RAYLINE_HOME."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rayline.config import get_settings


@pytest.fixture(autouse=True)
def private_rayline_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh ``RAYLINE_HOME`` (no dev token, database or clusters of a demo run)."""
    home = tmp_path_factory.mktemp("rayline-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAYLINE_HOME", str(home))
        for name in ("RAYLINE_API_TOKEN", "RAYLINE_DATABASE_URL", "RAYLINE_ARTIFACT_URI"):
            patch.delenv(name, raising=False)
        get_settings.cache_clear()
        yield home
    get_settings.cache_clear()
