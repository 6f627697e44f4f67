"""Fixtures for metadata unit tests: a migrated SQLite file per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from rayline.metadata.db import create_engine_for
from rayline.metadata.migrate import upgrade


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """URL of a SQLite file (in a directory that does not exist yet), migrated to head."""
    url = f"sqlite:///{tmp_path / 'store' / 'rayline.db'}"
    upgrade(url)
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on the migrated SQLite file."""
    engine = create_engine_for(db_url)
    yield engine
    engine.dispose()
