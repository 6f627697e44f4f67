"""ZooKeeper security of the managers' clients, from settings."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from rayline.config import Settings
from rayline.coordination.acl import ZOOKEEPER_USER, client_security


def test_without_a_password_znodes_stay_open() -> None:
    assert client_security(Settings(zookeeper_hosts="127.0.0.1:1")) == ([], None)


def test_with_a_password_only_the_rayline_user_may_write_and_everyone_may_read() -> None:
    auth, acl = client_security(
        Settings(zookeeper_hosts="127.0.0.1:1", zookeeper_password=SecretStr("s3cret"))
    )

    assert auth == [("digest", f"{ZOOKEEPER_USER}:s3cret")]
    assert acl is not None
    by_scheme = {entry.id.scheme: entry for entry in acl}
    assert set(by_scheme) == {"digest", "world"}
    assert by_scheme["digest"].id.id.startswith(f"{ZOOKEEPER_USER}:")
    assert "s3cret" not in by_scheme["digest"].id.id  # only the salted digest is stored
    assert by_scheme["digest"].acl_list == ["ALL"]
    assert by_scheme["world"].acl_list == ["READ"]


def test_production_refuses_zookeeper_without_a_password() -> None:
    production: dict[str, Any] = {
        "environment": "production",
        "api_token": SecretStr("t" * 40),
        "database_url": "postgresql+psycopg://u:p@127.0.0.1:5432/db",
        "zookeeper_hosts": "127.0.0.1:2181",
    }
    with pytest.raises(ValueError, match="RAYLINE_ZOOKEEPER_PASSWORD"):
        Settings(**production)
    Settings(**production, zookeeper_password=SecretStr("s3cret"))  # accepted
