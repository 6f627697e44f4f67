"""``deploy/mlflow.sh`` against the real Postgres and S3 server."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
from sqlalchemy import create_engine, make_url, text

from rayline.config import Settings
from rayline.storage.s3_store import make_s3_client
from tests.integration.tracking.conftest import MlflowServer


def _pid(server: MlflowServer) -> int:
    return int((server.state_dir / "mlflow.pid").read_text())


def test_up_is_idempotent_and_stores_in_postgres_and_s3(mlflow_server: MlflowServer) -> None:
    server = mlflow_server
    pid = _pid(server)
    again = server.script("up")
    assert _pid(server) == pid, "a second `up` must not start another server"
    assert "ready" in again.stderr
    assert server.script("status").stdout.startswith(f"mlflow: up ({server.url}")
    env_file = (server.state_dir / "mlflow.env").read_text()
    assert env_file.strip() == f"export RAYLINE_MLFLOW_TRACKING_URI={server.url}"

    # The backend store is its own database on our Postgres: MLflow's tables are there.
    url = make_url(os.environ["RAYLINE_PG_URL"]).set(database=server.database)
    engine = create_engine(url)
    with engine.connect() as conn:
        tables = set(
            conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname='public'"))
            .scalars()
            .all()
        )
    engine.dispose()
    assert {"experiments", "runs", "metrics", "registered_models"} <= tables

    # An artifact logged through the server's proxy lands in the S3 bucket.
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=server.url)
    experiment = client.create_experiment("script-check")
    run = client.create_run(experiment)
    client.log_text(run.info.run_id, "hello", "note.txt")
    keys = [
        o["Key"]
        for o in make_s3_client(Settings())
        .list_objects_v2(Bucket=server.bucket, Prefix="mlflow/")
        .get("Contents", [])
    ]
    assert any(k.endswith(f"{run.info.run_id}/artifacts/note.txt") for k in keys), keys


def test_no_password_on_any_command_line(mlflow_server: MlflowServer) -> None:
    password = make_url(os.environ["RAYLINE_PG_URL"]).password
    secret = os.environ["RAYLINE_S3_SECRET_ACCESS_KEY"]
    assert password
    pgid = _pid(mlflow_server)
    seen = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.getpgid(int(proc.name)) != pgid:
                continue
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except (OSError, ProcessLookupError):
            continue
        seen += 1
        assert password not in cmdline and secret not in cmdline, cmdline
    assert seen >= 2, "the server and its worker(s) run in the script's process group"


def test_down_stops_only_what_it_started(mlflow_server: MlflowServer) -> None:
    server = mlflow_server
    pid = _pid(server)
    server.script("down")
    assert server.script("status", check=False).returncode == 3
    try:
        os.kill(pid, 0)
        raise AssertionError(f"server pid {pid} still runs after down")
    except ProcessLookupError:
        pass
    try:
        httpx.get(f"{server.url}/health", timeout=2)
        raise AssertionError("the port still answers after down")
    except httpx.HTTPError:
        pass
    # down again: nothing to stop, nothing else touched; up brings it back on the same store.
    assert "not running" in server.script("down").stderr
    server.script("up")
    assert httpx.get(f"{server.url}/health", timeout=5).status_code == 200
    assert _pid(server) != pid
