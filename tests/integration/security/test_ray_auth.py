"""Ray's token auth and a clean environment, on a real cluster of a real manager.

An attacker on the same machine can reach every loopback port. The cluster must
refuse their dashboard and Jobs API calls without its token, accept them with it,
run Rayline's jobs, and its Ray processes must hold none of the manager's secrets.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import make_url, text

from rayline.clusters.client import ClusterManagerClient
from rayline.clusters.schemas import ClusterCreate, ClusterPublic, ResourceSpec
from rayline.jobs.client import JobClient
from tests.integration.clusters.leaks import ray_pids_of
from tests.integration.manager import ManagerProcess

pytestmark = pytest.mark.integration

READY_TIMEOUT = 600  # a loaded 2-core host starts Ray slowly
S3_CANARY = "s3-secret-canary-9f2c"


@pytest.fixture
def cluster(
    manager_factory: Callable[..., ManagerProcess], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[ManagerProcess, ClusterManagerClient, ClusterPublic]]:
    """One READY head-only cluster of a fresh manager (deleted by the manager fixture)."""
    if not os.environ.get("RAYLINE_S3_SECRET_ACCESS_KEY"):
        monkeypatch.setenv("RAYLINE_S3_SECRET_ACCESS_KEY", S3_CANARY)
    manager = manager_factory()
    client = manager.client()
    spec = ClusterCreate(
        name="auth", purpose="training", head=ResourceSpec(cpus=1), ttl_seconds=900
    )
    ready = client.wait_until_ready(client.create_cluster(spec).id, timeout=READY_TIMEOUT)
    yield manager, client, ready


def test_the_cluster_refuses_calls_without_its_token_and_runs_jobs_with_it(
    cluster: tuple[ManagerProcess, ClusterManagerClient, ClusterPublic],
) -> None:
    manager, client, ready = cluster
    assert ready.job_api_url is not None
    credentials = client.cluster_credentials(ready.id)
    token = credentials.ray_auth_token
    assert token and len(token) >= 32

    with httpx.Client(base_url=ready.job_api_url, timeout=10, trust_env=False) as http:
        assert http.get("/api/jobs/").status_code == 401
        wrong = {"Authorization": "Bearer " + "0" * 64}
        assert http.get("/api/jobs/", headers=wrong).status_code == 403
        submit = {"entrypoint": "echo pwned"}
        assert http.post("/api/jobs/", json=submit).status_code == 401
        ok = http.get("/api/jobs/", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200, ok.text
        assert ok.json() == []  # the refused submission never ran

    # The token never shows in what the manager answers or logs, nor in the database.
    listing = httpx.get(
        f"{manager.url}/v1/clusters", headers={"Authorization": f"Bearer {manager.token}"}
    )
    assert listing.status_code == 200 and token not in listing.text
    unauthenticated = httpx.get(f"{manager.url}/v1/clusters/{ready.id}/credentials")
    assert unauthenticated.status_code == 401
    assert token not in manager.log.read_text()
    assert token not in _database_dump(manager.env["RAYLINE_DATABASE_URL"])

    # Same-machine clients read the file: this user's only.
    assert credentials.ray_auth_token_path is not None
    path = Path(credentials.ray_auth_token_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == token

    # A driver inside the cluster connects to it (ray.init authenticates with the token).
    jobs = JobClient.for_cluster(ready, client)
    job_id = jobs.submit_entrypoint(
        entrypoint="python -c \"import ray; ray.init(); print('nodes', len(ray.nodes()))\""
    )
    state = jobs._wait_terminal(job_id, deadline=None)
    logs = jobs.logs(job_id)
    assert state == "SUCCEEDED", logs
    assert "nodes 1" in logs

    # Teardown takes the token with it.
    client.delete_cluster(ready.id)
    client.wait_until(ready.id, state="TERMINATED", timeout=120)
    assert not path.exists()


def test_ray_processes_hold_none_of_the_managers_secrets(
    cluster: tuple[ManagerProcess, ClusterManagerClient, ClusterPublic],
) -> None:
    manager, _client, ready = cluster
    secrets = {
        "manager token": manager.env["RAYLINE_API_TOKEN"],
        "database password": make_url(manager.env["RAYLINE_DATABASE_URL"]).password or "",
        "S3 secret": manager.env["RAYLINE_S3_SECRET_ACCESS_KEY"],
    }
    assert all(secrets.values()), "the manager must hold each secret for the test to mean much"
    seen: dict[str, bytes] = {}
    for pid in ray_pids_of(ready.id):
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            continue  # a short-lived helper ended meanwhile
        seen[name] = environ
        for what, value in secrets.items():
            assert value.encode() not in environ, f"{name} (pid {pid}) holds the {what}"
    assert {"raylet", "gcs_server"} <= seen.keys(), sorted(seen)
    for name in ("raylet", "gcs_server"):
        variables = dict(v.split(b"=", 1) for v in seen[name].split(b"\0") if b"=" in v)
        assert variables[b"RAY_AUTH_MODE"] == b"token"
        assert b"DOCKER_HOST" not in variables


def _database_dump(url: str) -> str:
    """Every cluster row and event of the manager's database, as text."""
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT * FROM clusters")).all()
            events = connection.execute(text("SELECT * FROM cluster_events")).all()
    finally:
        engine.dispose()
    return repr(rows) + repr(events)
