"""Atomic, immutable published versions on the file:// backend."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rayline.storage.errors import (
    ArtifactNotFoundError,
    ChecksumMismatchError,
    InvalidKeyError,
    StorageError,
    VersionExistsError,
)
from rayline.storage.file_store import FileArtifactStore
from rayline.storage.versions import (
    MANIFEST_NAME,
    Manifest,
    fetch_version,
    list_versions,
    new_version_id,
    open_version,
    publish_version,
)


def test_publish_then_fetch_roundtrip(
    store: FileArtifactStore, model_dir: Path, tmp_path: Path
) -> None:
    ref = publish_version(store, "iris", model_dir, metadata={"accuracy": 0.97, "run": "r1"})

    assert ref.name == "iris"
    assert ref.uri == store.uri_for(f"iris/{ref.version_id}")
    assert ref.file_count == 3
    manifest_bytes = store.get_bytes(f"iris/{ref.version_id}/{MANIFEST_NAME}")
    assert ref.manifest_sha256 == hashlib.sha256(manifest_bytes).hexdigest()

    dest = tmp_path / "fetched"
    manifest = fetch_version(
        store, "iris", ref.version_id, dest, expected_manifest_sha256=ref.manifest_sha256
    )
    assert manifest.metadata == {"accuracy": 0.97, "run": "r1"}
    assert [e.path for e in manifest.files] == ["README.txt", "model.pkl", "weights/layer0.bin"]
    for entry in manifest.files:
        data = (dest / entry.path).read_bytes()
        assert data == (model_dir / entry.path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry.sha256
        assert len(data) == entry.size
    assert (dest / MANIFEST_NAME).read_bytes() == manifest_bytes
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_manifest_is_readable_json(store: FileArtifactStore, model_dir: Path) -> None:
    ref = publish_version(store, "iris", model_dir)
    doc = json.loads(store.get_bytes(f"iris/{ref.version_id}/{MANIFEST_NAME}"))
    assert doc["format"] == 1
    assert doc["version_id"] == ref.version_id
    assert doc["created_at"] == ref.created_at
    assert {f["path"] for f in doc["files"]} == {"README.txt", "model.pkl", "weights/layer0.bin"}


def test_payload_without_manifest_is_invisible(
    store: FileArtifactStore, model_dir: Path, tmp_path: Path
) -> None:
    # What an interrupted publish leaves behind: payload files, no manifest.
    store.put_dir("iris/20250101T000000000000Z-deadbeef", model_dir)

    assert list_versions(store, "iris") == []
    with pytest.raises(ArtifactNotFoundError, match="interrupted upload"):
        open_version(store, "iris", "20250101T000000000000Z-deadbeef")
    with pytest.raises(ArtifactNotFoundError):
        fetch_version(store, "iris", "20250101T000000000000Z-deadbeef", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_versions_are_listed_oldest_first(store: FileArtifactStore, model_dir: Path) -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    ids = [new_version_id(start + timedelta(seconds=s)) for s in (30, 0, 10, 20)]
    for vid in ids:
        publish_version(store, "iris", model_dir, version_id=vid)
    publish_version(store, "other", model_dir)

    assert list_versions(store, "iris") == sorted(ids)
    generated = publish_version(store, "iris", model_dir).version_id
    assert list_versions(store, "iris")[-1] == generated  # generated ids sort after older ones


def test_generated_ids_are_unique_and_time_sortable() -> None:
    now = datetime(2025, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)
    ids = {new_version_id(now) for _ in range(200)}
    assert len(ids) == 200
    assert all(i.startswith("20250601T120000123456Z-") for i in ids)
    assert new_version_id(now) < new_version_id(now + timedelta(microseconds=1))


def test_existing_version_is_never_overwritten(
    store: FileArtifactStore, model_dir: Path, tmp_path: Path
) -> None:
    ref = publish_version(store, "iris", model_dir, version_id="v1")
    other = tmp_path / "other"
    other.mkdir()
    (other / "model.pkl").write_bytes(b"different")

    with pytest.raises(VersionExistsError, match="immutable"):
        publish_version(store, "iris", other, version_id="v1")

    manifest = open_version(store, "iris", "v1", expected_manifest_sha256=ref.manifest_sha256)
    assert len(manifest.files) == 3
    assert store.get_bytes("iris/v1/model.pkl") == (model_dir / "model.pkl").read_bytes()


def test_tampered_payload_fails_fetch_and_leaves_no_destination(
    store: FileArtifactStore, model_dir: Path, tmp_path: Path
) -> None:
    ref = publish_version(store, "iris", model_dir)
    # Replace a payload file *with* a matching sidecar: only the manifest can tell.
    store.put_bytes(f"iris/{ref.version_id}/model.pkl", b"swapped model")
    dest = tmp_path / "fetched"

    with pytest.raises(ChecksumMismatchError, match=r"model\.pkl"):
        fetch_version(store, "iris", ref.version_id, dest)

    assert not dest.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".rayline")] == []


def test_manifest_digest_from_the_registry_is_enforced(
    store: FileArtifactStore, model_dir: Path, tmp_path: Path
) -> None:
    ref = publish_version(store, "iris", model_dir)
    with pytest.raises(ChecksumMismatchError):
        fetch_version(
            store, "iris", ref.version_id, tmp_path / "x", expected_manifest_sha256="0" * 64
        )


def test_fetch_refuses_a_non_empty_destination(
    store: FileArtifactStore, model_dir: Path, tmp_path: Path
) -> None:
    ref = publish_version(store, "iris", model_dir)
    dest = tmp_path / "busy"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        fetch_version(store, "iris", ref.version_id, dest)
    empty = tmp_path / "empty"
    empty.mkdir()
    fetch_version(store, "iris", ref.version_id, empty)
    assert (empty / "model.pkl").exists()


def test_publish_input_errors(store: FileArtifactStore, model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidKeyError):
        publish_version(store, "../iris", model_dir)
    with pytest.raises(InvalidKeyError):
        publish_version(store, "iris", model_dir, version_id="a/b")
    with pytest.raises(NotADirectoryError):
        publish_version(store, "iris", tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="nothing to publish"):
        publish_version(store, "iris", empty)
    with pytest.raises(ValueError, match="JSON"):
        publish_version(store, "iris", model_dir, metadata={"bad": object()})
    (model_dir / MANIFEST_NAME).write_text("{}")
    with pytest.raises(ValueError, match="clash"):
        publish_version(store, "iris", model_dir)
    assert store.list_keys() == []


def test_hand_edited_manifest_is_rejected(store: FileArtifactStore, model_dir: Path) -> None:
    ref = publish_version(store, "iris", model_dir, version_id="v1")
    manifest = open_version(store, "iris", ref.version_id)
    # A manifest copied from another version under this id (sidecar rewritten too).
    copied = Manifest(
        name="iris", version_id="v2", created_at=manifest.created_at, files=manifest.files
    )
    store.put_bytes("iris/v1/manifest.json", copied.to_json())
    with pytest.raises(StorageError, match="copied or edited"):
        open_version(store, "iris", "v1")


def test_unknown_version_and_name(store: FileArtifactStore) -> None:
    assert list_versions(store, "ghost") == []
    with pytest.raises(ArtifactNotFoundError, match="'v9' of 'ghost'"):
        open_version(store, "ghost", "v9")
