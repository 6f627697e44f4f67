"""Attack on Prometheus by any local process: shut it down or reload it over HTTP."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.manager import free_port

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[str]:
    """A Prometheus of its own from deploy/monitoring.sh, stopped afterwards."""
    port = free_port()
    env = {
        **os.environ,
        "RAYLINE_HOME": str(tmp_path / "home"),
        "RAYLINE_MONITORING_DIR": str(tmp_path / "monitoring"),
        "RAYLINE_PROMETHEUS_PORT": str(port),
    }
    script = str(REPO / "deploy" / "monitoring.sh")
    subprocess.run([script, "up"], env=env, check=True, capture_output=True)
    try:
        yield f"http://127.0.0.1:{port}"
        # `up` again reloads the running server (by signal, not over HTTP).
        subprocess.run([script, "up"], env=env, check=True, capture_output=True)
    finally:
        subprocess.run([script, "down"], env=env, check=False, capture_output=True)


def test_prometheus_refuses_shutdown_and_reload_over_http(prometheus: str) -> None:
    for action in ("quit", "reload"):
        answer = httpx.post(f"{prometheus}/-/{action}")
        assert answer.status_code == 403, (action, answer.text)

    assert httpx.get(f"{prometheus}/-/ready").status_code == 200
