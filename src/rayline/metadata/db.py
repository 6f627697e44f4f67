"""Engines and sessions for the metadata store, on SQLite or Postgres.

SQLite is the embedded default and is tuned so that several threads and
processes can share one file: WAL, a busy timeout (wait for the lock instead of
failing) and ``BEGIN IMMEDIATE`` (take the write lock when the transaction
starts, so two read-then-write transactions serialize instead of one failing
with "database is locked" at its first write). Transactions that only read
(`read_only`) start with a plain deferred ``BEGIN`` instead: under WAL they
take no lock at all, so they never queue behind writers or each other (with
IMMEDIATE, 16 concurrent API reads waited in SQLite's busy handler for up to
seconds). Postgres needs neither.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from rayline.metadata.errors import UnsupportedDatabaseError

__all__ = [
    "create_engine_for",
    "create_session_factory",
    "insert_unless_exists",
    "open_session",
    "parse_database_url",
    "read_only",
    "read_only_sessions",
    "session_scope",
    "sqlite_file_path",
]

DEFAULT_SQLITE_BUSY_TIMEOUT_MS = 30_000

#: Execution option marking an engine (or connection) whose transactions only read.
READ_ONLY_OPTION = "rayline_read_only"


def read_only_sessions(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """``sessions`` bound to the `read_only` variant of its engine (itself if unbound)."""
    bind = sessions.kw.get("bind")
    if not isinstance(bind, Engine):
        return sessions
    return sessionmaker(**{**sessions.kw, "bind": read_only(bind)})


def read_only(engine: Engine) -> Engine:
    """The same engine (same pool) for transactions that only read.

    On SQLite their transactions begin deferred, taking no lock under WAL; a
    write in one may fail with "database is locked", so use it for reads only.
    """
    return engine.execution_options(**{READ_ONLY_OPTION: True})


def parse_database_url(url: str | URL) -> URL:
    """Parse a metadata store URL, defaulting Postgres to the psycopg 3 driver.

    Raises:
        UnsupportedDatabaseError: the URL is neither SQLite nor Postgres.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql" and "+" not in parsed.drivername:
        # Only psycopg 3 is installed; a bare postgresql:// would pick psycopg2.
        parsed = parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite" and parsed.get_driver_name() != "pysqlite":
        raise UnsupportedDatabaseError(parsed.drivername)  # the pragmas need sqlite3
    if backend not in ("sqlite", "postgresql"):
        raise UnsupportedDatabaseError(backend)
    return parsed


def sqlite_file_path(url: str | URL) -> Path | None:
    """Return the file of a SQLite URL, or None for Postgres and in-memory SQLite."""
    parsed = parse_database_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def create_engine_for(
    url: str | URL,
    *,
    sqlite_busy_timeout_ms: int = DEFAULT_SQLITE_BUSY_TIMEOUT_MS,
    sqlite_foreign_keys: bool = True,
    echo: bool = False,
) -> Engine:
    """Create an engine for the metadata store at ``url``.

    Args:
        url: ``sqlite:///PATH`` or ``postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB``.
        sqlite_busy_timeout_ms: how long a SQLite connection waits for a lock.
        sqlite_foreign_keys: enforce foreign keys on SQLite (migrations turn it
            off, see ``migrations/env.py``).
        echo: log every SQL statement.

    Returns:
        An engine; on SQLite every transaction starts with ``BEGIN IMMEDIATE``
        (plain ``BEGIN`` on its `read_only` variant).

    Raises:
        UnsupportedDatabaseError: the URL is neither SQLite nor Postgres.
    """
    parsed = parse_database_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, echo=echo)
        _configure_sqlite(engine, sqlite_busy_timeout_ms, sqlite_foreign_keys)
        return engine
    # pre_ping: a Postgres restart must not surface as an error on the next query.
    return create_engine(parsed, echo=echo, pool_pre_ping=True)


def _configure_sqlite(engine: Engine, busy_timeout_ms: int, foreign_keys: bool) -> None:
    """Install the SQLite recipe from SQLAlchemy's pysqlite docs, with IMMEDIATE."""

    def on_connect(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
        # sqlite3 must not emit its own (deferred, DML-only) BEGIN: on_begin does.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")  # durable enough with WAL
            cursor.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
        finally:
            cursor.close()

    def on_begin(connection: Connection) -> None:
        reading = connection.get_execution_options().get(READ_ONLY_OPTION, False)
        connection.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", on_begin)


def create_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return a session factory whose objects stay readable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(bind: Engine | sessionmaker[Session]) -> Iterator[Session]:
    """Yield a session in a transaction: committed on success, rolled back on error.

    Example:
        >>> with session_scope(engine) as session:  # doctest: +SKIP
        ...     session.add(cluster)
    """
    factory = create_session_factory(bind) if isinstance(bind, Engine) else bind
    with factory.begin() as session:
        yield session


@contextmanager
def open_session(bind: Session | Engine) -> Iterator[Session]:
    """Yield ``bind`` itself if it is a session, else a new :func:`session_scope`.

    A given session stays the caller's: it is flushed, never committed here.
    """
    if isinstance(bind, Session):
        yield bind
        bind.flush()
    else:
        with session_scope(bind) as session:
            yield session


def insert_unless_exists(
    session: Session, entity: type[DeclarativeBase], unique_on: list[str], **values: Any
) -> None:
    """``INSERT ... ON CONFLICT (unique_on) DO NOTHING``, on Postgres and SQLite alike.

    The row exists afterwards whoever won the race to create it, so the caller
    can go on to ``SELECT ... FOR UPDATE`` it without catching IntegrityError
    (which would abort the whole Postgres transaction).
    """
    if session.get_bind().dialect.name == "postgresql":
        pg = postgresql.insert(entity).values(**values)
        session.execute(pg.on_conflict_do_nothing(index_elements=unique_on))
    else:
        lite = sqlite.insert(entity).values(**values)
        session.execute(lite.on_conflict_do_nothing(index_elements=unique_on))
