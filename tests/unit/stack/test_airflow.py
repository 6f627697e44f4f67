"""Unit tests of the stack's Airflow configuration and REST API client (fake transport)."""

from __future__ import annotations

import configparser
import json
import stat
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from rayline.stack.airflow import AirflowApiError, AirflowClient, write_airflow_config
from rayline.stack.config import StackConfig, load_secrets


def _config(tmp_path: Path) -> StackConfig:
    return StackConfig(
        state_dir=tmp_path,
        services_dir=tmp_path / "services",
        pg_port=55432,
        s3_port=59000,
        manager_port=18775,
        airflow_port=18080,
        database="rayline",
        airflow_database="airflow",
        bucket="rayline",
    )


def test_airflow_config_is_loopback_local_executor_and_private(tmp_path: Path) -> None:
    config = _config(tmp_path)
    secrets = load_secrets(tmp_path)
    url = "postgresql+psycopg://rayline:p%40ss@127.0.0.1:55432/airflow"

    path = write_airflow_config(config, secrets, url, tmp_path / "dags")

    parser = configparser.ConfigParser(interpolation=configparser.BasicInterpolation())
    parser.read(path)  # Airflow interpolates '%': the doubled '%%' reads back as one
    assert parser["core"]["executor"] == "LocalExecutor"
    assert parser["core"]["execution_api_server_url"] == "http://127.0.0.1:18080/execution/"
    assert parser["api"]["host"] == "127.0.0.1"
    assert parser["database"]["sql_alchemy_conn"] == url
    assert parser["database"]["sql_alchemy_conn_async"] == url
    assert parser["api_auth"]["jwt_secret"] == secrets.airflow_jwt_secret.get_secret_value()
    passwords = Path(parser["core"]["simple_auth_manager_passwords_file"])
    expected = secrets.airflow_admin_password.get_secret_value()
    assert json.loads(passwords.read_text()) == {"admin": expected}
    for private in (path, passwords):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600


class FakeAirflow:
    """The api-server's routes the client uses, recording what it was sent."""

    def __init__(self) -> None:
        self.logins = 0
        self.expire_next = False
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/auth/token":
            body = json.loads(request.content)
            if body != {"username": "admin", "password": "pw"}:
                return httpx.Response(401, json={"detail": "Invalid credentials"})
            self.logins += 1
            return httpx.Response(201, json={"access_token": f"jwt{self.logins}"})
        if self.expire_next:
            self.expire_next = False
            return httpx.Response(401, json={"detail": "expired"})
        if request.headers.get("authorization") != f"Bearer jwt{self.logins}":
            return httpx.Response(401, json={"detail": "no token"})
        path = request.url.path
        if path == "/api/v2/dags/missing/details":
            return httpx.Response(404, json={"detail": "not found"})
        if path.endswith("/dagRuns") and request.method == "POST":
            return httpx.Response(200, json={"dag_run_id": "manual__1", "state": "queued"})
        if "/xcomEntries/" in path:
            return httpx.Response(200, json={"value": json.dumps({"predictions": [0, 2]})})
        return httpx.Response(200, json={"dag_id": "d", "params": {}})


def _client(fake: FakeAirflow, password: str = "pw") -> AirflowClient:
    return AirflowClient(
        "http://af", "admin", SecretStr(password), transport=httpx.MockTransport(fake)
    )


def test_one_login_serves_many_calls_and_an_expired_token_is_renewed() -> None:
    fake = FakeAirflow()
    with _client(fake) as client:
        assert client.get_dag("d") is not None
        client.unpause("d")
        fake.expire_next = True
        assert client.get_dag("d") is not None

    assert fake.logins == 2
    patch = next(r for r in fake.requests if r.method == "PATCH")
    assert json.loads(patch.content) == {"is_paused": False}


def test_trigger_sends_the_conf_with_no_logical_date() -> None:
    fake = FakeAirflow()
    with _client(fake) as client:
        run = client.trigger("rayline_train_and_serve", {"training": {"name": "iris"}})

    assert run["dag_run_id"] == "manual__1"
    post = next(r for r in fake.requests if r.method == "POST" and r.url.path != "/auth/token")
    assert json.loads(post.content) == {
        "logical_date": None,
        "conf": {"training": {"name": "iris"}},
    }


def test_missing_dag_is_none_and_xcom_json_is_decoded() -> None:
    with _client(FakeAirflow()) as client:
        assert client.get_dag("missing") is None
        assert client.xcom("d", "manual__1", "verify_endpoint") == {"predictions": [0, 2]}


def test_a_refused_login_is_an_error_without_the_password() -> None:
    client = _client(FakeAirflow(), password="wrong-secret")
    with client, pytest.raises(AirflowApiError, match="refused the login") as caught:
        client.get_dag("d")

    assert "wrong-secret" not in str(caught.value)
