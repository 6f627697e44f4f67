"""open_store: the scheme registry, URI parsing, and errors that keep secrets out."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from pydantic import SecretStr

from rayline.config import Settings
from rayline.storage import (
    STORE_BACKENDS,
    StorageUnavailableError,
    UnsupportedStoreURIError,
    open_store,
)
from rayline.storage.file_store import FileArtifactStore
from rayline.storage.s3_store import S3ArtifactStore, make_transfer_config

SECRET = "sup3r-s3cret-value-that-must-not-leak"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        home=tmp_path / "home",
        s3_endpoint_url="http://127.0.0.1:1",  # nothing listens on port 1
        s3_access_key_id=SecretStr("AKIDLEAKCHECK"),
        s3_secret_access_key=SecretStr(SECRET),
    )


def test_default_uri_comes_from_settings(settings: Settings) -> None:
    store = open_store(settings=settings)
    assert isinstance(store, FileArtifactStore)
    assert store.root == (settings.home / "artifacts").resolve()


def test_registry_lists_both_backends() -> None:
    assert dict(STORE_BACKENDS) == {"file": FileArtifactStore, "s3": S3ArtifactStore}


def test_unknown_scheme_lists_the_supported_ones(settings: Settings) -> None:
    with pytest.raises(UnsupportedStoreURIError, match=r"supported schemes: file://, s3://"):
        open_store("gs://bucket/x", settings)


@pytest.mark.parametrize(
    "uri", ["file://remotehost/dir", "file:relative/dir", "file:///dir?x=1", "s3://", "s3://AB"]
)
def test_malformed_uris_are_refused(settings: Settings, uri: str) -> None:
    with pytest.raises(UnsupportedStoreURIError):
        open_store(uri, settings)


def test_file_uri_is_percent_decoded(settings: Settings) -> None:
    store = open_store("file:///tmp/with%20space", settings)
    assert isinstance(store, FileArtifactStore)
    assert store.root == Path("/tmp/with space")


def test_s3_uri_parts(settings: Settings) -> None:
    store = open_store("s3://my-bucket/team/models/", settings)
    assert isinstance(store, S3ArtifactStore)
    assert store.bucket == "my-bucket"
    assert store.uri == "s3://my-bucket/team/models"
    assert store.uri_for("iris/v1/model.pkl") == "s3://my-bucket/team/models/iris/v1/model.pkl"
    assert open_store("s3://my-bucket", settings).uri == "s3://my-bucket"


def test_transfer_tuning_comes_from_settings(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        s3_multipart_threshold_mb=32,
        s3_multipart_chunk_mb=16,
        s3_max_concurrency=3,
    )
    config = make_transfer_config(settings)
    assert config.multipart_threshold == 32 * 1024 * 1024
    assert config.multipart_chunksize == 16 * 1024 * 1024
    assert config.max_request_concurrency == 3
    assert config.io_chunksize == 1024 * 1024


def test_unreachable_s3_is_a_clear_error_without_secrets(settings: Settings) -> None:
    store = open_store("s3://some-bucket/p", settings)
    assert SECRET not in repr(store)
    with pytest.raises(StorageUnavailableError) as info:
        store.put_stream("k", io.BytesIO(b"x"))
    message = str(info.value)
    assert "127.0.0.1:1" in message
    assert "deploy/services.sh up" in message
    assert SECRET not in message
    assert "AKIDLEAKCHECK" not in message
