"""DashboardClient against a small local HTTP server answering like Ray's dashboard."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from rayline.clusters.backends.dashboard import DashboardClient
from rayline.clusters.backends.errors import BackendUnavailableError

# path -> (status, body); a str body is sent as text, anything else as JSON.
Routes = dict[str, tuple[int, Any]]
# The Authorization header of every request the server answered.
SEEN_AUTH: list[str | None] = []

NODES = {
    "result": True,
    "data": {
        "result": {
            "result": [
                {"node_id": "a", "is_head_node": True, "state": "ALIVE", "resources_total": {}},
                {
                    "node_id": "b",
                    "is_head_node": False,
                    "state": "ALIVE",
                    "resources_total": {"CPU": 1.0},
                },
                {"node_id": "c", "is_head_node": False, "state": "DEAD", "resources_total": {}},
            ]
        }
    },
}


@pytest.fixture
def routes() -> Routes:
    return {}


@pytest.fixture
def dashboard(routes: Routes) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            SEEN_AUTH.append(self.headers.get("Authorization"))
            status, body = routes.get(self.path.split("?")[0], (404, "not found"))
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(status)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_healthy_cluster(dashboard: str, routes: Routes) -> None:
    routes.update(
        {
            "/api/gcs_healthz": (200, "success"),
            "/api/version": (200, {"version": "4"}),
            "/api/v0/nodes": (200, NODES),
        }
    )
    with DashboardClient(dashboard) as client:
        assert client.gcs_healthy() == (True, "")
        assert client.job_api_ok() == (True, "")
        nodes = client.nodes()
    assert [(n.role, n.alive) for n in nodes] == [
        ("head", True),
        ("worker", True),
        ("worker", False),
    ]
    assert nodes[1].resources == {"CPU": 1.0}


def test_unhealthy_answers_say_why(dashboard: str, routes: Routes) -> None:
    routes.update({"/api/gcs_healthz": (503, "x"), "/api/version": (401, "no")})
    with DashboardClient(dashboard) as client:
        gcs_ok, why = client.gcs_healthy()
        job_ok, why_jobs = client.job_api_ok()
        with pytest.raises(BackendUnavailableError, match="/api/v0/nodes"):
            client.nodes()
    assert not gcs_ok and "503" in why
    assert not job_ok and "401" in why_jobs


def test_silent_dashboard_is_reported_not_raised() -> None:
    with DashboardClient(f"http://127.0.0.1:{closed_port()}", timeout=1) as client:
        ok, why = client.gcs_healthy()
        assert client.serve_app_count() == 0
    assert not ok and "not answering" in why


def test_activity_counts_running_and_pending_jobs_and_serve_apps(
    dashboard: str, routes: Routes
) -> None:
    jobs = [{"status": s} for s in ("RUNNING", "PENDING", "SUCCEEDED", "RUNNING", "FAILED")]
    routes.update(
        {
            "/api/jobs/": (200, jobs),
            "/api/serve/applications/": (200, {"applications": {"app1": {}, "app2": {}}}),
        }
    )
    with DashboardClient(dashboard) as client:
        assert client.job_counts() == {"running": 2, "pending": 1}
        assert client.serve_app_count() == 2


def test_serve_errors_count_as_no_apps_but_job_api_errors_raise(
    dashboard: str, routes: Routes
) -> None:
    routes.update({"/api/serve/applications/": (500, "boom"), "/api/jobs/": (200, {"x": 1})})
    with DashboardClient(dashboard) as client:
        assert client.serve_app_count() == 0
        with pytest.raises(BackendUnavailableError, match="expected a list"):
            client.job_counts()


def test_every_request_carries_the_clusters_token(dashboard: str, routes: Routes) -> None:
    routes.update({"/api/gcs_healthz": (200, "success"), "/api/jobs/": (200, [])})
    SEEN_AUTH.clear()
    with DashboardClient(dashboard, token="t0k") as client:
        assert client.gcs_healthy() == (True, "")
        assert client.job_counts() == {"running": 0, "pending": 0}
    with DashboardClient(dashboard) as client:
        client.gcs_healthy()
    assert SEEN_AUTH == ["Bearer t0k", "Bearer t0k", None]
