"""Alembic environment for the Rayline metadata store (SQLite or Postgres)."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection, text

from rayline.metadata.db import create_engine_for, sqlite_file_path
from rayline.metadata.models import Base

config = context.config
target_metadata = Base.metadata

# Any constant works; it only has to be the same for every Rayline process.
_PG_MIGRATION_LOCK_KEY = 0x7261796C  # "rayl"


def _database_url() -> str:
    """The URL given by rayline.metadata.migrate, else the Rayline settings."""
    url = config.attributes.get("database_url")
    if url:
        return str(url)
    from rayline.config import get_settings  # only the alembic CLI gets here

    return get_settings().database_url


def run_migrations_offline() -> None:
    """Print the SQL instead of running it (``alembic upgrade head --sql``)."""
    url = _database_url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    # SQLite can only ALTER through batch mode (copy the table); our engine
    # emits BEGIN itself, so its DDL is transactional like Postgres's.
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=sqlite,
        transactional_ddl=True,
    )
    with context.begin_transaction():
        if not sqlite:
            # Two processes upgrading at once must not both run a migration;
            # SQLite gets the same from BEGIN IMMEDIATE.
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK_KEY}
            )
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on a live connection."""
    url = _database_url()
    path = sqlite_file_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)  # a first run on a new machine
    # Foreign keys off: a batch migration drops and re-creates a table, and with
    # enforcement on that drop would cascade-delete the rows that point at it.
    engine = create_engine_for(url, sqlite_foreign_keys=False)
    try:
        with engine.connect() as connection:
            _run_on(connection)
    finally:
        engine.dispose()


if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
