"""Airflow for unit tests: a throw-away AIRFLOW_HOME, set before Airflow is first imported.

No metadata database: these tests call operators, hooks and triggers directly.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from rayline.config import get_settings
from rayline.metadata.db import create_engine_for
from rayline.metadata.migrate import upgrade
from rayline.orchestration.embedded import configure_airflow

# Shared with tests/integration/orchestration: whichever conftest loads first decides.
if "RAYLINE_TEST_AIRFLOW_HOME" not in os.environ:
    os.environ["RAYLINE_TEST_AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="rl-af-")
    atexit.register(shutil.rmtree, os.environ["RAYLINE_TEST_AIRFLOW_HOME"], ignore_errors=True)
_home = Path(os.environ["RAYLINE_TEST_AIRFLOW_HOME"])
configure_airflow(_home, dags_folder=_home / "dags")


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """A migrated SQLite metadata store that the Rayline settings point at."""
    url = f"sqlite:///{tmp_path / 'rayline.db'}"
    upgrade(url)
    monkeypatch.setenv("RAYLINE_DATABASE_URL", url)
    get_settings.cache_clear()
    engine = create_engine_for(url)
    yield engine
    engine.dispose()
    get_settings.cache_clear()
