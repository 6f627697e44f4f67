"""Apply the packaged Alembic migrations to a metadata store."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import URL

from rayline.metadata.db import create_engine_for, parse_database_url, sqlite_file_path

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic is imported where it runs: the jobs and the CLI import rayline.metadata for
# the registry, and loading Alembic costs them most of a second at start-up.

__all__ = ["alembic_config", "current_revision", "upgrade"]

ALEMBIC_INI = Path(__file__).with_name("alembic.ini")


def alembic_config(database_url: str | URL) -> Config:
    """Return the packaged Alembic configuration, pointed at ``database_url``.

    The URL travels in ``Config.attributes``, not in the ini options, so a
    password with ``%`` in it needs no escaping and is never written anywhere.
    """
    from alembic.config import Config

    # Alembic's default stdout is whatever sys.stdout was when alembic.config was
    # first imported; imported lazily, that may be a stream closed since.
    config = Config(str(ALEMBIC_INI), stdout=sys.stdout)
    config.attributes["database_url"] = parse_database_url(database_url).render_as_string(
        hide_password=False
    )
    config.attributes["configure_logger"] = False  # the host program owns logging
    return config


def upgrade(database_url: str | URL, revision: str = "head") -> None:
    """Run ``alembic upgrade`` on the store at ``database_url``.

    Creates the parent directory of a SQLite file (see ``migrations/env.py``).
    Safe to call from several processes at once: the migration runs under a
    database lock.
    """
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


def current_revision(database_url: str | URL) -> str | None:
    """Return the store's Alembic revision, or None if it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    path = sqlite_file_path(database_url)
    if path is not None and not path.exists():
        return None  # don't create an empty file just to look at it
    engine = create_engine_for(database_url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
