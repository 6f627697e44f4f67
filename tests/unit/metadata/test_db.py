"""Engine setup: SQLite pragmas, up-front write lock, sessions, UTC timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import OperationalError, StatementError

from rayline.metadata.db import create_engine_for, parse_database_url, read_only, session_scope
from rayline.metadata.enums import ClusterPurpose
from rayline.metadata.models import Cluster


def _cluster(**kwargs: object) -> Cluster:
    return Cluster(name="c", purpose=ClusterPurpose.TRAINING, backend="local", **kwargs)


def test_sqlite_pragmas(engine: Engine) -> None:
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000


def test_transactions_take_the_write_lock_when_they_begin(db_url: str, engine: Engine) -> None:
    impatient = create_engine_for(db_url, sqlite_busy_timeout_ms=0)
    try:
        with engine.begin() as holder:
            holder.execute(text("SELECT 1"))  # a read only: the lock is held from BEGIN
            with (
                pytest.raises(OperationalError, match="database is locked"),
                impatient.begin() as other,
            ):
                other.execute(text("SELECT 1"))
    finally:
        impatient.dispose()


def test_read_only_transactions_take_no_lock(db_url: str, engine: Engine) -> None:
    impatient = create_engine_for(db_url, sqlite_busy_timeout_ms=0)
    try:
        with session_scope(engine) as session:
            session.add(_cluster(id="rc-seen"))
        with engine.begin() as writer:
            writer.execute(text("SELECT 1"))  # holds the write lock from BEGIN
            # A reader neither waits for the writer nor fails, and sees committed rows.
            with session_scope(read_only(impatient)) as reader:
                assert reader.scalars(select(Cluster.id)).all() == ["rc-seen"]
            # Two readers side by side.
            with read_only(impatient).begin() as one, read_only(impatient).begin() as two:
                assert (
                    one.execute(text("SELECT 1")).scalar() == two.execute(text("SELECT 1")).scalar()
                )
    finally:
        impatient.dispose()


def test_postgres_url_defaults_to_psycopg() -> None:
    url = parse_database_url("postgresql://u:p@127.0.0.1:5432/db")

    assert url.drivername == "postgresql+psycopg"


def test_session_scope_commits(engine: Engine) -> None:
    with session_scope(engine) as session:
        session.add(_cluster(id="rc-000000000001"))

    with session_scope(engine) as session:
        assert session.get(Cluster, "rc-000000000001") is not None


def test_session_scope_rolls_back_on_error(engine: Engine) -> None:
    with pytest.raises(RuntimeError), session_scope(engine) as session:
        session.add(_cluster(id="rc-000000000002"))
        session.flush()
        raise RuntimeError("boom")

    with session_scope(engine) as session:
        assert session.get(Cluster, "rc-000000000002") is None


def test_timestamps_come_back_aware_utc(engine: Engine) -> None:
    tokyo = timezone(timedelta(hours=9))
    moment = datetime(2026, 5, 9, 18, 30, tzinfo=tokyo)
    with session_scope(engine) as session:
        session.add(_cluster(id="rc-000000000003", ready_at=moment))

    with session_scope(engine) as session:
        stored = session.scalars(select(Cluster.ready_at)).one()
        created = session.scalars(select(Cluster.created_at)).one()

    assert stored == moment
    assert stored is not None and stored.tzinfo is UTC and stored.hour == 9
    assert created.tzinfo is UTC


def test_naive_timestamps_are_refused(engine: Engine) -> None:
    with pytest.raises(StatementError, match="naive datetime"), session_scope(engine) as session:
        session.add(_cluster(ready_at=datetime(2026, 5, 9, 12, 0)))
