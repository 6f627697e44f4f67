"""Fixtures for the storage unit tests: a file:// store in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from rayline.storage.file_store import FileArtifactStore


@pytest.fixture
def store(tmp_path: Path) -> FileArtifactStore:
    """An empty file:// store whose root does not exist yet (created on first write)."""
    return FileArtifactStore(tmp_path / "artifacts")


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A small local directory that looks like a trained model."""
    root = tmp_path / "model"
    (root / "weights").mkdir(parents=True)
    (root / "model.pkl").write_bytes(b"\x80\x04pickled-model")
    (root / "weights" / "layer0.bin").write_bytes(bytes(range(256)) * 64)
    (root / "README.txt").write_text("trained on iris\n")
    return root
