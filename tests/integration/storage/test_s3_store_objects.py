"""Objects, directories and errors of the S3 backend against the real server."""

from __future__ import annotations

import hashlib
import io
import os
import secrets
from pathlib import Path

import pytest
from pydantic import SecretStr

from rayline.config import Settings
from rayline.storage import open_store
from rayline.storage.errors import (
    ArtifactExistsError,
    ArtifactNotFoundError,
    ChecksumMismatchError,
    InvalidKeyError,
    StorageAccessDeniedError,
)
from rayline.storage.s3_store import S3ArtifactStore
from tests.integration.resources import delete_bucket
from tests.integration.storage.s3_helpers import MIB, write_random_file

pytestmark = pytest.mark.integration


def test_bucket_is_created_on_first_write(s3_settings: Settings) -> None:
    bucket = f"rayline-it-new-{secrets.token_hex(4)}"
    store = open_store(f"s3://{bucket}/models", s3_settings)
    assert isinstance(store, S3ArtifactStore)
    try:
        assert store.list_keys() == []  # reading a missing bucket is just empty
        with pytest.raises(ArtifactNotFoundError):
            store.get_bytes("nothing")
        store.put_bytes("a.txt", b"x")
        head = store.client.head_object(Bucket=bucket, Key="models/a.txt")
        assert head["Metadata"]["sha256"] == hashlib.sha256(b"x").hexdigest()
    finally:
        delete_bucket(store.client, bucket)


def test_file_roundtrip_multipart(
    s3_store: S3ArtifactStore, s3_settings: Settings, tmp_path: Path
) -> None:
    # Bigger than the multipart threshold of these settings: many parts, in parallel.
    store = S3ArtifactStore(
        s3_store.bucket,
        "multipart",
        s3_settings.model_copy(
            update={
                "s3_multipart_threshold_mb": 5,
                "s3_multipart_chunk_mb": 5,
                "s3_max_concurrency": 4,
            }
        ),
    )
    src = write_random_file(tmp_path / "big.bin", 23 * MIB + 11)
    put = store.put_file("runs/big.bin", src)
    got = store.get_file("runs/big.bin", tmp_path / "out" / "big.bin")
    assert put.sha256 == got.sha256 == hashlib.sha256(src.read_bytes()).hexdigest()
    assert (tmp_path / "out" / "big.bin").read_bytes() == src.read_bytes()
    store.delete("runs/big.bin")


def test_stream_bytes_and_listing(s3_store: S3ArtifactStore) -> None:
    s3_store.put_stream("b/2", io.BytesIO(b"two"))
    s3_store.put_bytes("a/1", b"one")
    s3_store.put_bytes("b/1", b"uno")
    s3_store.put_bytes("bb/1", b"x")
    sink = io.BytesIO()
    s3_store.get_stream("b/2", sink)
    assert sink.getvalue() == b"two"
    assert s3_store.list_keys() == ["a/1", "b/1", "b/2", "bb/1"]
    assert s3_store.list_keys("b") == ["b/1", "b/2"]
    assert s3_store.stat("a/1").sha256 == hashlib.sha256(b"one").hexdigest()


def test_directory_roundtrip(s3_store: S3ArtifactStore, model_dir: Path, tmp_path: Path) -> None:
    s3_store.put_dir("m", model_dir)
    s3_store.get_dir("m", tmp_path / "copy")
    for rel in ("README.txt", "model.pkl", "weights/layer0.bin"):
        assert (tmp_path / "copy" / rel).read_bytes() == (model_dir / rel).read_bytes()


def test_missing_objects_are_typed_not_found(s3_store: S3ArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(ArtifactNotFoundError, match="nope"):
        s3_store.get_file("nope", tmp_path / "x")
    with pytest.raises(ArtifactNotFoundError):
        s3_store.stat("nope")
    with pytest.raises(ArtifactNotFoundError):
        s3_store.delete("nope")
    assert not s3_store.exists("nope")
    assert list(tmp_path.iterdir()) == []


def test_exclusive_put_uses_a_conditional_write(s3_store: S3ArtifactStore) -> None:
    s3_store.put_bytes("once", b"1", exclusive=True)
    with pytest.raises(ArtifactExistsError):
        s3_store.put_bytes("once", b"2", exclusive=True)
    assert s3_store.get_bytes("once") == b"1"


@pytest.mark.parametrize("key", ["../x", "/abs", "a\\b", "a//b", "x" * 1025])
def test_bad_keys_never_reach_the_server(s3_store: S3ArtifactStore, key: str) -> None:
    with pytest.raises(InvalidKeyError):
        s3_store.put_bytes(key, b"x")


def test_tampered_object_is_refused(s3_store: S3ArtifactStore, tmp_path: Path) -> None:
    s3_store.put_bytes("m/model.bin", b"good model")
    head = s3_store.client.head_object(
        Bucket=s3_store.bucket, Key=s3_store.object_key("m/model.bin")
    )
    # Overwrite the bytes behind our back, keeping the recorded digest.
    s3_store.client.put_object(
        Bucket=s3_store.bucket,
        Key=s3_store.object_key("m/model.bin"),
        Body=b"evil model",
        Metadata=head["Metadata"],
    )
    dest = tmp_path / "dl" / "model.bin"
    with pytest.raises(ChecksumMismatchError):
        s3_store.get_file("m/model.bin", dest)
    assert list((tmp_path / "dl").iterdir()) == []


def test_object_without_recorded_digest_is_refused(s3_store: S3ArtifactStore) -> None:
    s3_store.client.put_object(
        Bucket=s3_store.bucket, Key=s3_store.object_key("foreign"), Body=b"not ours"
    )
    with pytest.raises(ChecksumMismatchError, match="no sha256 was recorded"):
        s3_store.get_bytes("foreign")
    # ...unless the caller knows what it should be.
    digest = hashlib.sha256(b"not ours").hexdigest()
    assert s3_store.get_bytes("foreign", expected_sha256=digest) == b"not ours"


def test_wrong_credentials_are_denied_without_leaking(s3_store: S3ArtifactStore) -> None:
    wrong_secret = "wrong-secret-" + secrets.token_hex(8)
    settings = Settings(
        s3_endpoint_url=os.environ["RAYLINE_S3_ENDPOINT_URL"],
        s3_access_key_id=SecretStr(os.environ["RAYLINE_S3_ACCESS_KEY_ID"]),
        s3_secret_access_key=SecretStr(wrong_secret),
    )
    store = S3ArtifactStore(s3_store.bucket, "denied", settings)
    with pytest.raises(StorageAccessDeniedError) as info:
        store.put_bytes("k", b"x")
    message = str(info.value)
    assert "RAYLINE_S3_SECRET_ACCESS_KEY" in message
    assert wrong_secret not in message
    assert os.environ["RAYLINE_S3_SECRET_ACCESS_KEY"] not in message


@pytest.mark.slow
def test_300_mb_roundtrip_with_checksum(s3_store: S3ArtifactStore, tmp_path: Path) -> None:
    src = write_random_file(tmp_path / "big.bin", 300 * MIB)
    expected = hashlib.sha256(src.read_bytes()).hexdigest()

    put = s3_store.put_file("big/payload.bin", src)
    assert put.sha256 == expected
    assert s3_store.stat("big/payload.bin").size == 300 * MIB

    dest = tmp_path / "back.bin"
    got = s3_store.get_file("big/payload.bin", dest)
    assert got.sha256 == expected
    with dest.open("rb") as fh:
        assert hashlib.file_digest(fh, "sha256").hexdigest() == expected
    s3_store.delete("big/payload.bin")
