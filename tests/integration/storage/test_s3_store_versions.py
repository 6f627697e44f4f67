"""Published versions on the real S3 server: atomic, listed, immutable, verified."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rayline.storage.errors import (
    ArtifactNotFoundError,
    ChecksumMismatchError,
    VersionExistsError,
)
from rayline.storage.s3_store import S3ArtifactStore
from rayline.storage.versions import (
    MANIFEST_NAME,
    fetch_version,
    list_versions,
    new_version_id,
    open_version,
    publish_version,
)

pytestmark = pytest.mark.integration


def test_publish_list_fetch(s3_store: S3ArtifactStore, model_dir: Path, tmp_path: Path) -> None:
    ref = publish_version(s3_store, "iris", model_dir, metadata={"accuracy": 0.97})

    assert ref.uri == f"{s3_store.uri}/iris/{ref.version_id}"
    assert list_versions(s3_store, "iris") == [ref.version_id]
    manifest = fetch_version(
        s3_store,
        "iris",
        ref.version_id,
        tmp_path / "out",
        expected_manifest_sha256=ref.manifest_sha256,
    )
    assert manifest.metadata == {"accuracy": 0.97}
    for entry in manifest.files:
        assert (tmp_path / "out" / entry.path).read_bytes() == (model_dir / entry.path).read_bytes()
    raw = (tmp_path / "out" / MANIFEST_NAME).read_bytes()
    assert hashlib.sha256(raw).hexdigest() == ref.manifest_sha256


def test_payload_without_manifest_is_invisible(
    s3_store: S3ArtifactStore, model_dir: Path, tmp_path: Path
) -> None:
    s3_store.put_dir("iris/20250101T000000000000Z-0badc0de", model_dir)
    assert list_versions(s3_store, "iris") == []
    with pytest.raises(ArtifactNotFoundError):
        fetch_version(s3_store, "iris", "20250101T000000000000Z-0badc0de", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_listing_order(s3_store: S3ArtifactStore, model_dir: Path) -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    ids = [new_version_id(start + timedelta(minutes=m)) for m in (3, 1, 2)]
    for vid in ids:
        publish_version(s3_store, "iris", model_dir, version_id=vid)
    assert list_versions(s3_store, "iris") == sorted(ids)


def test_existing_version_is_never_overwritten(
    s3_store: S3ArtifactStore, model_dir: Path, tmp_path: Path
) -> None:
    ref = publish_version(s3_store, "iris", model_dir, version_id="v1")
    other = tmp_path / "other"
    other.mkdir()
    (other / "model.pkl").write_bytes(b"different")
    with pytest.raises(VersionExistsError):
        publish_version(s3_store, "iris", other, version_id="v1")
    open_version(s3_store, "iris", "v1", expected_manifest_sha256=ref.manifest_sha256)
    assert s3_store.get_bytes("iris/v1/model.pkl") == (model_dir / "model.pkl").read_bytes()


def test_tampered_payload_fails_fetch(
    s3_store: S3ArtifactStore, model_dir: Path, tmp_path: Path
) -> None:
    ref = publish_version(s3_store, "iris", model_dir)
    key = s3_store.object_key(f"iris/{ref.version_id}/model.pkl")
    # Overwrite with boto3 directly, even with a self-consistent digest: the
    # manifest still pins the original.
    evil = b"swapped model"
    s3_store.client.put_object(
        Bucket=s3_store.bucket,
        Key=key,
        Body=evil,
        Metadata={"sha256": hashlib.sha256(evil).hexdigest()},
    )
    with pytest.raises(ChecksumMismatchError, match="model"):
        fetch_version(s3_store, "iris", ref.version_id, tmp_path / "out")
    assert not (tmp_path / "out").exists()
