"""Airflow for integration tests: a throw-away AIRFLOW_HOME with a migrated SQLite database.

Set before Airflow is first imported; shared with tests/unit/orchestration (whichever
conftest loads first decides). The DAGs under test are copied into its dags folder,
because ``dag.test()`` syncs the DAG from there.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rayline.config import get_settings
from rayline.orchestration.dags import DAGS_FOLDER
from rayline.orchestration.embedded import (
    configure_airflow,
    migrate_airflow_db,
    rayline_connection_environment,
)
from tests.integration.manager import ManagerProcess

if "RAYLINE_TEST_AIRFLOW_HOME" not in os.environ:
    os.environ["RAYLINE_TEST_AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="rl-af-")
    atexit.register(shutil.rmtree, os.environ["RAYLINE_TEST_AIRFLOW_HOME"], ignore_errors=True)
_home = Path(os.environ["RAYLINE_TEST_AIRFLOW_HOME"])
configure_airflow(_home, dags_folder=_home / "dags")


@pytest.fixture(scope="session")
def airflow_dags_folder() -> Path:
    """The Airflow dags folder, with a migrated Airflow database and the test DAGs in it."""
    folder = _home / "dags"
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("ray_job_dag.py", "keep_dag.py"):
        shutil.copy(Path(__file__).with_name(name), folder / name)
    shutil.copy(DAGS_FOLDER / "rayline_train_and_serve.py", folder / "rayline_train_and_serve.py")
    migrate_airflow_db()
    return folder


@pytest.fixture
def manager(
    manager_factory: Callable[..., ManagerProcess],
    airflow_dags_folder: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[ManagerProcess]:
    """A Cluster Manager for the DAG: its tasks, jobs and records all use this one.

    Operators reach it through the rayline_default connection; the jobs get its
    address, token and database through the Rayline settings of this process.
    """
    # Generous: on a loaded 2-core machine a Ray head can take minutes to come up.
    started = manager_factory(provision_timeout_seconds="300")
    for name, value in rayline_connection_environment(started.url, started.token).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RAYLINE_CLUSTER_MANAGER_URL", started.url)
    monkeypatch.setenv("RAYLINE_API_TOKEN", started.token)
    monkeypatch.setenv("RAYLINE_DATABASE_URL", started.env["RAYLINE_DATABASE_URL"])
    monkeypatch.setenv("RAYLINE_HOME", started.env["RAYLINE_HOME"])
    get_settings.cache_clear()
    yield started
    get_settings.cache_clear()
