"""Airflow 3 in the stack: its configuration file and a small client of its REST API v2.

The stack runs Airflow's api-server, scheduler (LocalExecutor), dag-processor and
triggerer on one ``airflow.cfg`` (mode 600, it holds the secrets) in the stack's
``AIRFLOW_HOME``: its database on our Postgres, the DAGs from
`rayline.orchestration.dags.DAGS_FOLDER`, every listener on loopback, and
Airflow's SimpleAuthManager with one admin whose password we generate (Airflow's
own would be printed to its log). API calls carry a JWT from ``POST /auth/token``.
"""

from __future__ import annotations

import configparser
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from rayline.stack.config import StackConfig, StackSecrets, write_private

__all__ = ["ADMIN_USER", "AirflowApiError", "AirflowClient", "write_airflow_config"]

#: The one user of the stack's SimpleAuthManager (role admin).
ADMIN_USER = "admin"

_SIMPLE_AUTH_MANAGER = (
    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
)


def write_airflow_config(
    config: StackConfig, secrets: StackSecrets, database_url: str, dags_folder: Path
) -> Path:
    """Write ``airflow.cfg`` and the admin's password file (both mode 600); return the cfg path.

    Args:
        config: the stack (ports, paths).
        secrets: the stack's secrets.
        database_url: Airflow's own database, ``postgresql+psycopg://...``.
        dags_folder: the folder the dag-processor parses.
    """
    home = config.airflow_home
    home.mkdir(parents=True, exist_ok=True)
    passwords = home / "simple_auth_manager_passwords.json"
    write_private(
        passwords,
        json.dumps({ADMIN_USER: secrets.airflow_admin_password.get_secret_value()}) + "\n",
    )
    api = config.airflow_url
    sections: dict[str, dict[str, str]] = {
        "core": {
            "dags_folder": str(dags_folder),
            "executor": "LocalExecutor",
            "parallelism": "8",
            "load_examples": "False",
            "dags_are_paused_at_creation": "True",
            "fernet_key": secrets.airflow_fernet_key.get_secret_value(),
            "auth_manager": _SIMPLE_AUTH_MANAGER,
            "simple_auth_manager_users": f"{ADMIN_USER}:admin",
            "simple_auth_manager_passwords_file": str(passwords),
            "execution_api_server_url": f"{api}/execution/",
        },
        "database": {
            "sql_alchemy_conn": database_url,
            # psycopg 3 speaks asyncio too: no asyncpg needed.
            "sql_alchemy_conn_async": database_url,
        },
        "api": {
            "host": "127.0.0.1",
            "port": str(config.airflow_port),
            "base_url": api,
            "workers": "1",
            "secret_key": secrets.airflow_api_secret_key.get_secret_value(),
            "expose_config": "False",
        },
        "api_auth": {"jwt_secret": secrets.airflow_jwt_secret.get_secret_value()},
        "logging": {"base_log_folder": str(home / "logs")},
        "scheduler": {"enable_health_check": "False"},
        "dag_processor": {"refresh_interval": "60"},
    }
    parser = configparser.ConfigParser(interpolation=None)
    for section, values in sections.items():
        # Airflow's parser interpolates '%': double it in every value.
        parser[section] = {key: value.replace("%", "%%") for key, value in values.items()}
    text = io.StringIO()
    parser.write(text)
    path = home / "airflow.cfg"
    write_private(path, text.getvalue())
    return path


class AirflowApiError(RuntimeError):
    """Airflow's REST API refused a request; the message holds its answer."""


class AirflowClient:
    """The few calls of Airflow 3's REST API v2 Rayline needs, with a JWT from ``/auth/token``.

    Args:
        base_url: the api-server, e.g. ``http://127.0.0.1:8080``.
        username: a SimpleAuthManager user.
        password: its password.
        timeout: seconds per request.
    """

    def __init__(
        self,
        base_url: str,
        username: str,
        password: SecretStr,
        *,
        timeout: float = 30,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._username = username
        self._password = password
        self._token: SecretStr | None = None
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), timeout=timeout, transport=transport
        )

    @property
    def base_url(self) -> str:
        """The api-server's URL."""
        return str(self._http.base_url)

    def __enter__(self) -> AirflowClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # ------------------------------------------------------------ health
    def health(self) -> dict[str, Any] | None:
        """``/api/v2/monitor/health`` (no auth), None while the api-server does not answer."""
        try:
            response = self._http.get("/api/v2/monitor/health", timeout=5)
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        health: dict[str, Any] = response.json()
        return health

    # ------------------------------------------------------------ DAGs and runs
    def get_dag(self, dag_id: str) -> dict[str, Any] | None:
        """The DAG's details (params with their defaults included), None until it is parsed."""
        response = self._request("GET", f"/api/v2/dags/{_seg(dag_id)}/details", missing_ok=True)
        return None if response is None else _object(response)

    def unpause(self, dag_id: str) -> None:
        """Unpause the DAG (new DAGs start paused; a paused DAG's runs stay queued)."""
        self._request("PATCH", f"/api/v2/dags/{_seg(dag_id)}", json={"is_paused": False})

    def trigger(self, dag_id: str, conf: Mapping[str, Any]) -> dict[str, Any]:
        """Start a run of the DAG with ``conf`` as its params; return the new run."""
        body = {"logical_date": None, "conf": dict(conf)}
        return _object(self._request("POST", f"/api/v2/dags/{_seg(dag_id)}/dagRuns", json=body))

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """One run: ``state`` is queued, running, success or failed."""
        path = f"/api/v2/dags/{_seg(dag_id)}/dagRuns/{_seg(run_id)}"
        return _object(self._request("GET", path))

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """The run's task instances, each with its ``task_id``, ``state`` and ``try_number``."""
        path = f"/api/v2/dags/{_seg(dag_id)}/dagRuns/{_seg(run_id)}/taskInstances"
        instances: list[dict[str, Any]] = _object(self._request("GET", path))["task_instances"]
        return instances

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        """A task's XCom value, None when it pushed none."""
        path = (
            f"/api/v2/dags/{_seg(dag_id)}/dagRuns/{_seg(run_id)}/taskInstances/"
            f"{_seg(task_id)}/xcomEntries/{_seg(key)}"
        )
        response = self._request("GET", path, missing_ok=True)
        if response is None:
            return None
        value = _object(response).get("value")
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    # ------------------------------------------------------------ plumbing
    def _bearer(self, *, renew: bool = False) -> str:
        if self._token is None or renew:
            response = self._http.post(
                "/auth/token",
                json={"username": self._username, "password": self._password.get_secret_value()},
            )
            if response.status_code not in (200, 201):
                raise AirflowApiError(
                    f"Airflow refused the login of {self._username!r}: HTTP "
                    f"{response.status_code} {response.text[:300]}"
                )
            self._token = SecretStr(response.json()["access_token"])
        return self._token.get_secret_value()

    def _request(
        self, method: str, path: str, *, missing_ok: bool = False, **kwargs: Any
    ) -> httpx.Response | None:
        response = self._send(method, path, self._bearer(), **kwargs)
        if response.status_code == 401:  # expired: log in again, once
            response = self._send(method, path, self._bearer(renew=True), **kwargs)
        if missing_ok and response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise AirflowApiError(
                f"{method} {path}: HTTP {response.status_code} {response.text[:1000]}"
            )
        return response

    def _send(self, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        return self._http.request(method, path, headers=headers, **kwargs)


def _seg(value: str) -> str:
    return quote(value, safe="")


def _object(response: httpx.Response | None) -> dict[str, Any]:
    assert response is not None  # only missing_ok requests return None
    body: dict[str, Any] = response.json()
    return body
