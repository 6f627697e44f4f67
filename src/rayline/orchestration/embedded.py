"""Run Rayline DAGs inside this process with Airflow's ``dag.test()``: no scheduler, SQLite.

The embedded default (``rayline demo``) and the integration tests use this. Airflow
reads its configuration once, when it is first imported, so call
`configure_airflow` before importing Airflow or any other `rayline.orchestration`
module; this module imports Airflow only inside its functions.

Example:
    >>> from rayline.orchestration import embedded
    >>> embedded.configure_airflow(Path("~/.rayline/airflow").expanduser())  # doctest: +SKIP
    >>> embedded.migrate_airflow_db()  # doctest: +SKIP
    >>> from rayline.orchestration.dags.rayline_train_and_serve import dag  # doctest: +SKIP
    >>> run = embedded.run_dag(dag, run_conf={"serving": {"port": 8123}})  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rayline.orchestration.dags import DAGS_FOLDER

if TYPE_CHECKING:
    from airflow.models.dagrun import DagRun
    from airflow.sdk import DAG

__all__ = [
    "airflow_environment",
    "configure_airflow",
    "migrate_airflow_db",
    "rayline_connection_environment",
    "run_dag",
]


def airflow_environment(home: Path, *, dags_folder: Path = DAGS_FOLDER) -> dict[str, str]:
    """The environment that makes Airflow keep everything under ``home`` and parse ``dags_folder``.

    Args:
        home: ``AIRFLOW_HOME``; its ``airflow.db`` is the SQLite metadata database.
        dags_folder: the folder whose DAG files ``dag.test()`` syncs (the DAG
            under test must live there).
    """
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    }


def configure_airflow(home: Path, *, dags_folder: Path = DAGS_FOLDER) -> None:
    """Point this process's Airflow at ``home`` and ``dags_folder`` (before Airflow is imported).

    Raises:
        RuntimeError: Airflow was imported already with another home; its settings
            cannot change any more in this process.
    """
    home.mkdir(parents=True, exist_ok=True)
    wanted = airflow_environment(home, dags_folder=dags_folder)
    if "airflow" in sys.modules and os.environ.get("AIRFLOW_HOME") != wanted["AIRFLOW_HOME"]:
        raise RuntimeError(
            f"Airflow was imported before configure_airflow({home}); call it first thing, "
            "before importing airflow or rayline.orchestration modules"
        )
    os.environ.update(wanted)
    if not os.environ.get("AIRFLOW__CORE__FERNET_KEY"):
        os.environ["AIRFLOW__CORE__FERNET_KEY"] = _fernet_key(home / "fernet.key")


def _fernet_key(path: Path) -> str:
    """The key Airflow encrypts connection passwords and variables with: made once, mode 600."""
    if not path.exists():
        from cryptography.fernet import Fernet

        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(Fernet.generate_key())
    return path.read_text().strip()


def migrate_airflow_db() -> None:
    """Create or upgrade Airflow's metadata database (what ``airflow db migrate`` does)."""
    from airflow.utils.db import upgradedb

    upgradedb()


def rayline_connection_environment(url: str, token: str | None = None) -> dict[str, str]:
    """``AIRFLOW_CONN_RAYLINE_DEFAULT`` for a Cluster Manager at ``url`` (JSON form).

    Args:
        url: the manager's base URL, e.g. ``http://127.0.0.1:8765``.
        token: its API token, kept in the connection's password.
    """
    scheme, _, rest = url.partition("://")
    host, _, port = rest.rstrip("/").partition(":")
    connection: dict[str, Any] = {"conn_type": "rayline", "host": host, "schema": scheme}
    if port:
        connection["port"] = int(port)
    if token:
        connection["password"] = token
    return {"AIRFLOW_CONN_RAYLINE_DEFAULT": json.dumps(connection)}


# Each DAG's param defaults as first seen here (see run_dag).
_DEFAULTS: dict[str, dict[str, Any]] = {}


def run_dag(dag: DAG, *, run_conf: dict[str, Any] | None = None) -> DagRun:
    """Run one DAG run to its end in this process; deferred tasks' triggers run inline.

    Every param is passed in the run's conf, unset ones with their default: in
    this process a run's conf is written into the DAG's own `Param` objects
    (Airflow 3.3's in-process runner resolves them in place), so a later run
    would otherwise inherit an earlier run's values.

    Returns:
        The finished DAG run (check ``.state``).
    """
    defaults = _DEFAULTS.setdefault(dag.dag_id, copy.deepcopy(dag.params.dump()))
    conf = {**copy.deepcopy(defaults), **(run_conf or {})}
    run: DagRun = dag.test(run_conf=conf)
    return run
