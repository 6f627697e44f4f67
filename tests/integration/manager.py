"""A real Cluster Manager process on real Postgres, starting real Ray clusters.

Its fixtures are registered in tests/integration/conftest.py for every integration test.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import URL

from rayline.clusters.client import ClusterManagerClient
from tests.integration.clusters.leaks import temp_base_env
from tests.integration.resources import temporary_database


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def fresh_pg_url(pg_admin_url: URL) -> Iterator[URL]:
    """An empty database of its own for one test, dropped afterwards."""
    with temporary_database(pg_admin_url, "rayline_cm") as url:
        yield url


@dataclass
class ManagerProcess:
    """`rayline cluster-manager serve` in a process group of its own."""

    env: dict[str, str] = field(repr=False)  # holds secrets
    port: int
    log: Path
    token: str = field(repr=False)
    process: subprocess.Popen[bytes] | None = None
    clients: list[ClusterManagerClient] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "rayline", "cluster-manager", "serve"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        # Generous: a manager (re)started while Ray jobs load this 2-core host imports,
        # migrates and reconciles slowly; one that dies fails the poll at once.
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        pytest.fail(f"manager did not answer: {self.log.read_text()[-3000:]}")

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)

    def client(self) -> ClusterManagerClient:
        client = ClusterManagerClient(self.url, token=self.token, timeout=70)
        self.clients.append(client)
        return client


@pytest.fixture
def manager_factory(fresh_pg_url: URL, tmp_path: Path) -> Iterator[Callable[..., ManagerProcess]]:
    """Start managers on one fresh database; at the end, delete every cluster and stop."""
    token = secrets.token_urlsafe(32)
    port = free_port()
    started: list[ManagerProcess] = []

    def start(**settings: str) -> ManagerProcess:
        env = {
            **os.environ,
            "RAYLINE_HOME": str(tmp_path / "home"),
            **temp_base_env(),
            "RAYLINE_DATABASE_URL": fresh_pg_url.render_as_string(hide_password=False),
            "RAYLINE_API_TOKEN": token,
            "RAYLINE_API_PORT": str(port),
            "RAYLINE_REAPER_INTERVAL_SECONDS": "1",
            # A dead cluster fails at once (its processes are gone); a live one whose
            # dashboard misses a 3 s probe on a loaded host must not be failed and killed.
            "RAYLINE_UNHEALTHY_GRACE_SECONDS": "30",
            "RAYLINE_PROVISION_TIMEOUT_SECONDS": "600",
            **{f"RAYLINE_{k.upper()}": v for k, v in settings.items()},
        }
        manager = ManagerProcess(env=env, port=port, log=tmp_path / "manager.log", token=token)
        manager.start()
        started.append(manager)
        return manager

    yield start

    live = [m for m in started if m.process is not None and m.process.poll() is None]
    if live:
        cleanup_clusters(live[-1])
    for manager in started:
        for client in manager.clients:
            client.close()
        manager.kill(signal.SIGTERM)


def cleanup_clusters(manager: ManagerProcess) -> None:
    """Delete every cluster of the test and wait until each has ended."""
    with ClusterManagerClient(manager.url, token=manager.token, timeout=70) as client:
        for cluster in client.list_clusters().data:
            if not cluster.state.is_terminal():
                client.delete_cluster(cluster.id)
        for cluster in client.list_clusters().data:
            client.wait_for_state(cluster.id, state="TERMINATED", timeout=60)
