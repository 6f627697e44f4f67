"""Fixtures for serving unit tests: a migrated SQLite store, a file:// artifact store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from rayline.config import Settings
from rayline.metadata import create_engine_for, upgrade
from rayline.storage import ArtifactStore, open_store


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Embedded-default settings in a temporary home; no grace period between switches."""
    database_url = f"sqlite:///{tmp_path / 'rayline.db'}"
    upgrade(database_url)
    return Settings(
        home=tmp_path / "home",
        database_url=database_url,
        artifact_uri=(tmp_path / "artifacts").as_uri(),
        serving_switch_grace_seconds=0,
        serving_start_timeout_seconds=3,
    )


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    """An engine on the migrated SQLite file."""
    engine = create_engine_for(settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def store(settings: Settings) -> ArtifactStore:
    """The file:// artifact store of ``settings``."""
    return open_store(settings.artifact_uri, settings)
