"""Production refuses a listener beyond loopback that lacks TLS and a token, naming the setting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from rayline.config import Settings, UnsafeSettingsError
from rayline.listeners import (
    check_listeners,
    check_manager_listener,
    check_ray_listener,
    check_serving_listener,
    is_loopback,
)

TOKEN = "t" * 40


def production(tmp_path: Path, **fields: Any) -> Settings:
    return Settings(
        environment="production",
        home=tmp_path / "home",
        api_token=TOKEN,
        database_url="postgresql+psycopg://rayline:pw@127.0.0.1:5432/rayline",
        **fields,
    )


def tls_files(tmp_path: Path) -> dict[str, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    return {"tls_cert_file": cert, "tls_key_file": key}


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True), ("127.4.5.6", True), ("::1", True), ("[::1]", True),
        ("localhost", True), ("0.0.0.0", False), ("::", False), ("10.0.0.5", False),
        ("manager.example.com", False),
    ],
)  # fmt: skip
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_production_on_loopback_passes(tmp_path: Path) -> None:
    check_listeners(production(tmp_path))


def test_development_may_bind_anywhere(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path, api_host="0.0.0.0", ray_bind_address="10.0.0.5", serving_host="0.0.0.0"
    )
    check_listeners(settings)


def test_an_exposed_manager_needs_tls(tmp_path: Path) -> None:
    with pytest.raises(UnsafeSettingsError) as caught:
        check_listeners(production(tmp_path, api_host="0.0.0.0"))
    message = str(caught.value)
    assert "RAYLINE_API_HOST=0.0.0.0" in message and "Cluster Manager API" in message
    assert "RAYLINE_TLS_CERT_FILE" in message and "RAYLINE_API_HOST=127.0.0.1" in message


def test_an_exposed_manager_with_tls_and_a_token_passes(tmp_path: Path) -> None:
    check_manager_listener(production(tmp_path, api_host="0.0.0.0", **tls_files(tmp_path)))


def test_tls_files_must_exist(tmp_path: Path) -> None:
    settings = production(
        tmp_path, tls_cert_file=tmp_path / "nope.pem", tls_key_file=tmp_path / "nope.key"
    )
    with pytest.raises(UnsafeSettingsError, match=r"nope\.pem is not a readable file"):
        check_manager_listener(settings, "10.1.2.3")


def test_a_host_given_on_the_command_line_is_named(tmp_path: Path) -> None:
    with pytest.raises(UnsafeSettingsError, match=r"--host=10\.1\.2\.3"):
        check_manager_listener(production(tmp_path), "10.1.2.3")


def test_an_exposed_ray_cluster_is_refused_even_with_tls(tmp_path: Path) -> None:
    settings = production(tmp_path, ray_bind_address="10.0.0.5", **tls_files(tmp_path))
    with pytest.raises(UnsafeSettingsError, match=r"RAYLINE_RAY_BIND_ADDRESS=10\.0\.0\.5"):
        check_ray_listener(settings)
    with pytest.raises(UnsafeSettingsError, match="RAYLINE_RAY_BIND_ADDRESS"):
        check_listeners(settings)


def test_exposed_model_endpoints_are_refused(tmp_path: Path) -> None:
    settings = production(tmp_path, serving_host="0.0.0.0", **tls_files(tmp_path))
    with pytest.raises(UnsafeSettingsError, match=r"RAYLINE_SERVING_HOST=0\.0\.0\.0"):
        check_serving_listener(settings)


def test_the_local_backend_and_the_deployer_check_their_listeners(tmp_path: Path) -> None:
    from rayline.clusters.backends.local import LocalBackend
    from rayline.serving.deployer import Deployer

    with pytest.raises(UnsafeSettingsError, match="RAYLINE_RAY_BIND_ADDRESS"):
        LocalBackend(production(tmp_path, ray_bind_address="0.0.0.0"))
    with pytest.raises(UnsafeSettingsError, match="RAYLINE_SERVING_HOST"):
        Deployer(
            settings=production(tmp_path, serving_host="0.0.0.0"),
            engine=None,  # type: ignore[arg-type]
            manager=None,  # type: ignore[arg-type]
        )


def test_tls_cert_and_key_go_together(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="RAYLINE_TLS_KEY_FILE"):
        Settings(home=tmp_path, tls_cert_file=tmp_path / "cert.pem")
    with_tls = Settings(home=tmp_path, **tls_files(tmp_path))
    assert with_tls.cluster_manager_url == "https://127.0.0.1:8765"
