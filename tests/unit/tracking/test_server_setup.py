"""The MLflow server's database name and store URI."""

from __future__ import annotations

import pytest

from rayline.tracking.server_setup import ensure_bucket, ensure_database, store_url


def test_store_url_keeps_server_and_credentials_and_swaps_the_database() -> None:
    url = store_url("postgresql+psycopg://u:secret@127.0.0.1:5432/rayline", "mlflow")
    assert url.render_as_string(hide_password=False) == (
        "postgresql+psycopg://u:secret@127.0.0.1:5432/mlflow"
    )


def test_a_database_name_that_is_not_an_identifier_is_refused() -> None:
    with pytest.raises(ValueError, match="letters, digits and _"):
        ensure_database("postgresql+psycopg://u:p@127.0.0.1:1/x", 'bad"; DROP')


def test_artifacts_must_be_an_s3_uri() -> None:
    with pytest.raises(ValueError, match="s3://BUCKET/PREFIX"):
        ensure_bucket("file:///tmp/mlflow")
