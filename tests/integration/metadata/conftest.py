"""Fixtures for metadata integration tests: the session's Postgres database, migrated."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import URL, Engine

from rayline.metadata.db import create_engine_for
from rayline.metadata.migrate import upgrade


@pytest.fixture(scope="session")
def pg_url(pg_database_url: URL) -> URL:
    """The fresh Postgres database of this session, migrated to head."""
    upgrade(pg_database_url)
    return pg_database_url


@pytest.fixture(scope="session")
def pg_engine(pg_url: URL) -> Iterator[Engine]:
    """An engine on the migrated database; its pool holds enough for 8 threads."""
    engine = create_engine_for(pg_url)
    yield engine
    engine.dispose()
