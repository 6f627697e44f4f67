"""The S3 server going away: restarts keep data, a dying upload stays invisible.

These tests stop and start the shared S3 server through deploy/services.sh;
each one restarts it before returning, whatever happened.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

from rayline.config import Settings
from rayline.storage.errors import ArtifactNotFoundError, StorageUnavailableError
from rayline.storage.s3_store import S3ArtifactStore
from rayline.storage.versions import (
    fetch_version,
    list_versions,
    new_version_id,
    open_version,
    publish_version,
)
from tests.integration.storage.s3_helpers import MIB, services, write_random_file

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_data_survives_a_server_restart(s3_store: S3ArtifactStore, model_dir: Path) -> None:
    ref = publish_version(s3_store, "iris", model_dir)
    s3_store.put_bytes("plain.txt", b"still here")

    services("stop")
    try:
        with pytest.raises(StorageUnavailableError, match="unreachable"):
            s3_store.get_bytes("plain.txt")
    finally:
        services("start")

    assert s3_store.get_bytes("plain.txt") == b"still here"
    assert list_versions(s3_store, "iris") == [ref.version_id]
    open_version(s3_store, "iris", ref.version_id, expected_manifest_sha256=ref.manifest_sha256)


def _wait_for_multipart_upload(store: S3ArtifactStore, done: threading.Event) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not done.is_set():
        uploads = store.client.list_multipart_uploads(
            Bucket=store.bucket, Prefix=store.object_key("big/")
        )
        if uploads.get("Uploads"):
            return
        time.sleep(0.05)
    pytest.fail("the publish never started a multipart upload (or finished before the stop)")


def test_interrupted_publish_stays_invisible(
    s3_store: S3ArtifactStore, s3_settings: Settings, tmp_path: Path
) -> None:
    # Small parts and two threads: the upload takes long enough to be cut.
    slow = S3ArtifactStore(
        s3_store.bucket,
        "interrupted",
        s3_settings.model_copy(
            update={
                "s3_multipart_threshold_mb": 8,
                "s3_multipart_chunk_mb": 8,
                "s3_max_concurrency": 2,
            }
        ),
    )
    payload = tmp_path / "payload"
    payload.mkdir()
    (payload / "config.json").write_text("{}")
    write_random_file(payload / "weights.bin", 768 * MIB)
    version_id = new_version_id()
    errors: list[BaseException] = []
    done = threading.Event()

    def publish() -> None:
        try:
            publish_version(slow, "big", payload, version_id=version_id)
        except BaseException as err:  # handed to the test thread below
            errors.append(err)
        finally:
            done.set()

    slow.put_bytes("ready.txt", b"bucket exists")  # so the poll below can list uploads
    worker = threading.Thread(target=publish, name="publisher")
    worker.start()
    try:
        _wait_for_multipart_upload(slow, done)
        services("stop")
        worker.join(timeout=300)
        assert not worker.is_alive(), "publish_version hung after the server died"
    finally:
        services("start")

    assert len(errors) == 1, f"publish should have failed, got {errors}"
    error = errors[0]
    assert isinstance(error, StorageUnavailableError), repr(error)
    assert "deploy/services.sh up" in str(error)
    assert os.environ["RAYLINE_S3_SECRET_ACCESS_KEY"] not in str(error)

    assert list_versions(slow, "big") == []
    with pytest.raises(ArtifactNotFoundError):
        fetch_version(slow, "big", version_id, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    leftovers = [k for k in slow.list_keys("big") if k.endswith("manifest.json")]
    assert leftovers == []
    # What the outage kept the transfer manager from aborting can be cleaned now.
    slow.abort_incomplete_uploads("big")
    assert (
        slow.client.list_multipart_uploads(Bucket=slow.bucket, Prefix=slow.object_key("big/")).get(
            "Uploads", []
        )
        == []
    )

    # The store works again after the restart.
    digest = hashlib.sha256(b"after").hexdigest()
    assert slow.put_bytes("after.txt", b"after").sha256 == digest
