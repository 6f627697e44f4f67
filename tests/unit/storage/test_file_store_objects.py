"""Objects and directories on the file:// backend."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from rayline.storage.errors import (
    ArtifactExistsError,
    ArtifactNotFoundError,
    ChecksumMismatchError,
    InvalidKeyError,
    StorageError,
)
from rayline.storage.file_store import FileArtifactStore


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_root_is_created_on_first_write(store: FileArtifactStore) -> None:
    assert not store.root.exists()
    assert store.list_keys() == []
    store.put_bytes("a/b.txt", b"hi")
    assert (store.root / "a" / "b.txt").read_bytes() == b"hi"


def test_file_roundtrip_records_and_verifies_sha256(
    store: FileArtifactStore, tmp_path: Path
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 7)  # several copy chunks
    src = tmp_path / "src.bin"
    src.write_bytes(data)

    put = store.put_file("runs/1/model.bin", src)
    got = store.get_file("runs/1/model.bin", tmp_path / "out" / "model.bin")

    assert put.sha256 == got.sha256 == sha(data)
    assert put.size == got.size == len(data)
    assert (tmp_path / "out" / "model.bin").read_bytes() == data
    assert store.stat("runs/1/model.bin") == put


def test_stream_and_bytes_roundtrip(store: FileArtifactStore) -> None:
    info = store.put_stream("s.bin", io.BytesIO(b"streamed"))
    sink = io.BytesIO()
    store.get_stream("s.bin", sink)
    assert sink.getvalue() == b"streamed"
    assert info.sha256 == sha(b"streamed")
    assert store.get_bytes("s.bin") == b"streamed"


def test_overwrite_replaces_content_and_checksum(store: FileArtifactStore) -> None:
    store.put_bytes("k", b"one")
    store.put_bytes("k", b"two")
    assert store.get_bytes("k") == b"two"
    assert store.stat("k").sha256 == sha(b"two")


def test_exclusive_put_refuses_existing(store: FileArtifactStore) -> None:
    store.put_bytes("once", b"1", exclusive=True)
    with pytest.raises(ArtifactExistsError):
        store.put_bytes("once", b"2", exclusive=True)
    assert store.get_bytes("once") == b"1"


def test_directory_roundtrip(store: FileArtifactStore, model_dir: Path, tmp_path: Path) -> None:
    infos = store.put_dir("m", model_dir)
    assert [i.key for i in infos] == ["m/README.txt", "m/model.pkl", "m/weights/layer0.bin"]

    store.get_dir("m", tmp_path / "copy")
    for rel in ("README.txt", "model.pkl", "weights/layer0.bin"):
        assert (tmp_path / "copy" / rel).read_bytes() == (model_dir / rel).read_bytes()


def test_get_dir_of_nothing_is_not_found(store: FileArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(ArtifactNotFoundError):
        store.get_dir("nothing", tmp_path / "x")


def test_put_dir_refuses_bad_names_before_uploading(
    store: FileArtifactStore, tmp_path: Path
) -> None:
    local = tmp_path / "local"
    local.mkdir()
    (local / "fine.txt").write_text("ok")
    (local / "back\\slash.txt").write_text("bad")
    with pytest.raises(InvalidKeyError, match="backslash"):
        store.put_dir("p", local)
    assert store.list_keys() == []


def test_put_dir_refuses_symlinked_directories(store: FileArtifactStore, tmp_path: Path) -> None:
    local = tmp_path / "local"
    local.mkdir()
    (local / "link").symlink_to(tmp_path)
    with pytest.raises(StorageError, match="symlinked directory"):
        store.put_dir("p", local)


def test_listing_is_sorted_and_scoped_to_the_prefix(store: FileArtifactStore) -> None:
    for key in ("b/2", "a/1", "b/1", "bb/1", "c"):
        store.put_bytes(key, b"x")
    assert store.list_keys() == ["a/1", "b/1", "b/2", "bb/1", "c"]
    assert store.list_keys("b") == ["b/1", "b/2"]
    assert store.list_keys("b/") == ["b/1", "b/2"]
    assert store.list_keys("missing") == []


def test_missing_object_is_a_typed_not_found(store: FileArtifactStore, tmp_path: Path) -> None:
    for call in (
        lambda: store.get_file("nope", tmp_path / "x"),
        lambda: store.get_bytes("nope"),
        lambda: store.stat("nope"),
        lambda: store.delete("nope"),
    ):
        with pytest.raises(ArtifactNotFoundError, match="nope"):
            call()
    assert not store.exists("nope")
    assert not (tmp_path / "x").exists()


def test_delete_removes_the_object(store: FileArtifactStore) -> None:
    store.put_bytes("d/1", b"x")
    store.put_bytes("d/2", b"y")
    store.delete("d/1")
    assert store.list_keys() == ["d/2"]
    assert store.delete_prefix("d") == 1
    assert store.list_keys() == []


def test_delete_prefix_refuses_the_whole_store(store: FileArtifactStore) -> None:
    with pytest.raises(InvalidKeyError, match="whole store"):
        store.delete_prefix("")


def test_tampered_file_is_refused_and_destination_not_left(
    store: FileArtifactStore, tmp_path: Path
) -> None:
    store.put_bytes("m/model.bin", b"good bytes")
    (store.root / "m" / "model.bin").write_bytes(b"evil bytes")
    dest = tmp_path / "dl" / "model.bin"

    with pytest.raises(ChecksumMismatchError, match="integrity") as info:
        store.get_file("m/model.bin", dest)

    assert info.value.expected == sha(b"good bytes")
    assert info.value.actual == sha(b"evil bytes")
    assert not dest.exists()
    assert list((tmp_path / "dl").iterdir()) == []  # no temporary file left either


def test_tampered_file_keeps_an_existing_destination(
    store: FileArtifactStore, tmp_path: Path
) -> None:
    store.put_bytes("k", b"good")
    (store.root / "k").write_bytes(b"bad!")
    dest = tmp_path / "k"
    dest.write_bytes(b"previous")
    with pytest.raises(ChecksumMismatchError):
        store.get_file("k", dest)
    assert dest.read_bytes() == b"previous"


def test_expected_sha256_is_enforced(store: FileArtifactStore) -> None:
    store.put_bytes("k", b"data")
    assert store.get_bytes("k", expected_sha256=sha(b"data")) == b"data"
    with pytest.raises(ChecksumMismatchError):
        store.get_bytes("k", expected_sha256=sha(b"other"))


def test_data_without_sidecar_is_invisible(store: FileArtifactStore) -> None:
    store.root.mkdir(parents=True)
    (store.root / "dropped.bin").write_bytes(b"copied by hand")
    assert not store.exists("dropped.bin")
    assert store.list_keys() == []


@pytest.mark.parametrize("key", ["../x", "/abs", "a\\b", "", "a\x00"])
def test_every_operation_validates_keys(store: FileArtifactStore, key: str) -> None:
    with pytest.raises(InvalidKeyError):
        store.put_bytes(key, b"x")
    with pytest.raises(InvalidKeyError):
        store.get_bytes(key)
    with pytest.raises(InvalidKeyError):
        store.exists(key)


def test_symlink_escape_out_of_root_is_refused(store: FileArtifactStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("do not read")
    store.root.mkdir(parents=True)
    (store.root / "escape").symlink_to(outside)

    with pytest.raises(InvalidKeyError, match="outside the store root"):
        store.put_bytes("escape/new.txt", b"x")
    with pytest.raises(InvalidKeyError, match="outside the store root"):
        store.get_bytes("escape/secret.txt")
    assert not (outside / "new.txt").exists()


def test_symlink_inside_root_is_allowed(store: FileArtifactStore) -> None:
    store.put_bytes("real/a", b"x")
    (store.root / "alias").symlink_to(store.root / "real")
    store.put_bytes("alias/b", b"y")
    assert (store.root / "real" / "b").read_bytes() == b"y"


def test_key_nesting_under_an_object_is_a_clear_error(store: FileArtifactStore) -> None:
    store.put_bytes("a", b"file")
    with pytest.raises(StorageError, match="already stored as a file"):
        store.put_bytes("a/b", b"nested")
    store.put_bytes("dir/x", b"1")
    with pytest.raises(StorageError, match="as a directory"):
        store.put_bytes("dir", b"2")


def test_put_file_of_missing_path(store: FileArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a regular file"):
        store.put_file("k", tmp_path / "missing")


def test_uris(store: FileArtifactStore) -> None:
    assert store.uri == store.root.as_uri()
    assert store.uri_for("a b/c") == (store.root / "a b" / "c").as_uri()
    assert "%20" in store.uri_for("a b/c")
