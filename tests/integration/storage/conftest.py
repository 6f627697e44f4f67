"""Fixtures for the S3 artifact store tests: one fresh key prefix per test."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from rayline.config import Settings
from rayline.storage.s3_store import S3ArtifactStore


@pytest.fixture
def s3_store(s3_bucket: str, s3_settings: Settings) -> S3ArtifactStore:
    """A store in the session bucket under a prefix no other test uses."""
    return S3ArtifactStore(s3_bucket, f"t-{secrets.token_hex(4)}", s3_settings)


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A small local directory that looks like a trained model."""
    root = tmp_path / "model"
    (root / "weights").mkdir(parents=True)
    (root / "model.pkl").write_bytes(b"\x80\x04pickled-model")
    (root / "weights" / "layer0.bin").write_bytes(os.urandom(300_000))
    (root / "README.txt").write_text("trained on iris\n")
    return root
