"""Fixtures for integration tests: the real services started by deploy/services.sh.

Every fixture reads its service's address from the environment and fails (not
skips) when it is missing, so a run without services cannot pass by accident.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import URL, create_engine, make_url, text

SERVICES_HINT = (
    "run `deploy/services.sh up` and source services.env "
    "(`. ${RAYLINE_SERVICES_DIR:-/var/tmp/rayline-services}/services.env`)"
)


def required_env(name: str) -> str:
    """Return environment variable ``name`` or fail the test saying how to set it."""
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set; {SERVICES_HINT}", pytrace=False)
    return value


# --- Postgres ---------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_admin_url() -> URL:
    """``RAYLINE_PG_URL``: a role allowed to create databases."""
    return make_url(required_env("RAYLINE_PG_URL"))


@contextmanager
def _temporary_database(admin_url: URL) -> Iterator[URL]:
    name = f"rayline_test_{secrets.token_hex(6)}"
    # CREATE/DROP DATABASE cannot run inside a transaction.
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield admin_url.set(database=name)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_database_url(pg_admin_url: URL) -> Iterator[URL]:
    """A fresh, empty database for this test session, dropped at the end."""
    with _temporary_database(pg_admin_url) as url:
        yield url


@pytest.fixture
def pg_empty_database_url(pg_admin_url: URL) -> Iterator[URL]:
    """A fresh, empty database for one test that must start from nothing."""
    with _temporary_database(pg_admin_url) as url:
        yield url


# --- Cluster Manager (fixtures defined in tests/integration/manager.py) -------

from tests.integration.manager import fresh_pg_url, manager_factory  # noqa: E402

__all__ = ["fresh_pg_url", "manager_factory"]
