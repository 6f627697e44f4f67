"""Airflow's long-running components in the stack: migrate, start, wait until healthy.

The api-server (UI and REST API), the scheduler with the LocalExecutor, the
dag-processor and the triggerer, each a background process of its own on the
stack's ``airflow.cfg``. Ready means: each reports healthy on ``/api/v2/monitor/
health`` and the dag-processor has parsed ``rayline_train_and_serve``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from functools import partial
from typing import Any

from rayline.orchestration.dags import DAGS_FOLDER
from rayline.stack.airflow import ADMIN_USER, AirflowClient, write_airflow_config
from rayline.stack.config import Report, StackConfig, StackSecrets
from rayline.stack.errors import StackError
from rayline.stack.processes import BackgroundProcess, wait_until_ready
from rayline.stack.services import database_url

__all__ = ["AIRFLOW_COMPONENTS", "DAG_ID", "healthy", "start_airflow"]

DAG_ID = "rayline_train_and_serve"
#: Airflow's long-running components, in start order; the key is their health entry.
AIRFLOW_COMPONENTS = {
    "airflow-api-server": "metadatabase",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag_processor",
    "airflow-triggerer": "triggerer",
}
_AIRFLOW_ARGS = {
    "airflow-api-server": ["api-server", "--host", "127.0.0.1", "--port", "{port}"],
    # Task and trigger logs are files the api-server reads itself: no log servers
    # (they would listen on every interface).
    "airflow-scheduler": ["scheduler", "--skip-serve-logs"],
    "airflow-dag-processor": ["dag-processor"],
    "airflow-triggerer": ["triggerer", "--skip-serve-logs"],
}


def start_airflow(
    config: StackConfig,
    secrets: StackSecrets,
    env: dict[str, str],
    process: Callable[[str], BackgroundProcess],
    *,
    timeout: float,
    report: Report,
) -> None:
    """Start the components that do not run yet and wait until Airflow has parsed our DAG.

    Args:
        config: the stack.
        secrets: its secrets (``airflow.cfg`` holds some).
        env: the stack's process environment.
        process: the background process of a component, by name.
        timeout: seconds each component may take.
        report: called with one line per step.

    Raises:
        StackError: ``airflow db migrate`` failed, or a component did not answer.
    """
    write_airflow_config(
        config, secrets, database_url(config, config.airflow_database), DAGS_FOLDER
    )
    airflow = [sys.executable, "-m", "airflow"]
    if any(process(name).pid() is None for name in AIRFLOW_COMPONENTS):
        report("migrating Airflow's database")
        migrate = process("airflow-db-migrate")
        with migrate.log_file.open("ab") as log:
            done = subprocess.run(
                [*airflow, "db", "migrate"],
                env=env,
                cwd=config.state_dir,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=timeout,
                check=False,
            )
        if done.returncode != 0:
            raise StackError(f"airflow db migrate failed:\n{migrate.tail()}")
    for name in AIRFLOW_COMPONENTS:
        component = process(name)
        if component.pid() is None:
            report(f"starting {name}")
            args = [a.format(port=config.airflow_port) for a in _AIRFLOW_ARGS[name]]
            component.start([*airflow, *args], env, cwd=config.state_dir)
    with AirflowClient(config.airflow_url, ADMIN_USER, secrets.airflow_admin_password) as client:
        for name, key in AIRFLOW_COMPONENTS.items():
            wait_until_ready(process(name), timeout, partial(_component_healthy, client, key))
        report(f"waiting for Airflow to parse {DAG_ID}")
        wait_until_ready(
            process("airflow-dag-processor"), timeout, lambda: client.get_dag(DAG_ID) is not None
        )


def _component_healthy(client: AirflowClient, key: str) -> bool:
    return healthy(client.health(), key)


def healthy(health: dict[str, Any] | None, key: str) -> bool:
    """True when Airflow's health answer says component ``key`` is healthy."""
    if health is None:
        return False
    entry = health.get(key) or {}
    return bool(entry.get("status") == "healthy")
