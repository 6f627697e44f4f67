"""`rayline cluster-manager serve` refuses unsafe production binds and serves HTTPS with TLS set."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rayline.cli import cluster_manager
from rayline.config import get_settings


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(cluster_manager.uvicorn, "run", lambda app, **kw: seen.update(kw))
    monkeypatch.setattr(cluster_manager, "create_app", lambda settings: object())
    monkeypatch.setenv("RAYLINE_ENVIRONMENT", "production")
    monkeypatch.setenv("RAYLINE_API_TOKEN", "t" * 40)
    monkeypatch.setenv("RAYLINE_DATABASE_URL", "postgresql+psycopg://u:pw@127.0.0.1:5432/db")
    get_settings.cache_clear()
    yield seen
    get_settings.cache_clear()


def test_an_exposed_manager_without_tls_does_not_start(served: dict[str, Any]) -> None:
    result = CliRunner().invoke(cluster_manager.app, ["--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "--host=0.0.0.0" in result.output and "RAYLINE_TLS_CERT_FILE" in result.output
    assert served == {}  # uvicorn never ran


def test_an_exposed_manager_with_tls_serves_https(
    served: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("cert")
    key.write_text("key")
    monkeypatch.setenv("RAYLINE_API_HOST", "0.0.0.0")
    monkeypatch.setenv("RAYLINE_TLS_CERT_FILE", str(cert))
    monkeypatch.setenv("RAYLINE_TLS_KEY_FILE", str(key))
    get_settings.cache_clear()
    result = CliRunner().invoke(cluster_manager.app, [])
    assert result.exit_code == 0, result.output
    assert served["host"] == "0.0.0.0"
    assert served["ssl_certfile"] == cert and served["ssl_keyfile"] == key
