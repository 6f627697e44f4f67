"""The model file of a version or a checkpoint: a plain name, and the bytes that were written.

A pickled model runs code when it is loaded. So before a model is loaded, the
file ``model.json`` names must be one of the version's own files (a plain
name, listed in its manifest when there is one) and its sha256 must be the one
recorded when it was written: in the manifest, or, for a model copied out of a
Ray Train checkpoint, the digest the worker reported with that checkpoint
(Ray Train keeps reported metrics apart from the checkpoint's files, so a file
changed in the checkpoint storage no longer matches).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from rayline.training.errors import ModelLoadError

__all__ = [
    "MODEL_SHA256",
    "checked_model_path",
    "copy_checkpointed_model",
    "model_digest_metrics",
    "sha256_of",
]

#: The metrics key under which a worker reports its checkpoint's model file digest.
MODEL_SHA256 = "model_sha256"
# rayline.storage.versions.MANIFEST_NAME; not imported: a model container has no
# rayline.storage dependencies (boto3), and only the manifest's file list is needed here.
_MANIFEST = "manifest.json"


def sha256_of(path: Path) -> str:
    """sha256 (hex) of a local file, read in one pass."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _is_plain_name(name: object, reserved: Collection[str]) -> bool:
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and not any(char in name for char in "/\\\0")
        and name not in reserved
    )


def checked_model_path(
    directory: Path,
    name: object,
    *,
    expected_sha256: str | None = None,
    require_manifest: bool = False,
    reserved: Collection[str] = (),
) -> Path:
    """The model file ``name`` of the version in ``directory``, checked before anything loads it.

    Args:
        directory: The version's files.
        name: ``model_file`` as ``model.json`` gives it.
        expected_sha256: The digest its writer recorded, when the directory has no
            manifest yet (or as well as the manifest's).
        require_manifest: Refuse a directory without ``manifest.json``.
        reserved: The version's other file names, which cannot be the model.

    Raises:
        ModelLoadError: The name is not a plain file name of the version, is not
            listed in the manifest, is not a regular file, or its sha256 differs.
    """
    where = directory / "model.json"
    if not _is_plain_name(name, reserved):
        raise ModelLoadError(
            f"{where} names model_file {name!r}; it must be the plain name of the model file "
            "inside the version (no '/', '..' or absolute path): the version is corrupt or "
            "was tampered with, train and publish it again"
        )
    assert isinstance(name, str)
    expected = [expected_sha256] if expected_sha256 else []
    listed = _manifest_digests(directory, require=require_manifest)
    if listed is not None:
        if name not in listed:
            raise ModelLoadError(
                f"model_file {name!r} of {where} is not listed in {directory / _MANIFEST}; "
                "the version was tampered with: train and publish it again"
            )
        expected.append(listed[name])
    path = directory / name
    if path.is_symlink() or not path.is_file():
        raise ModelLoadError(f"{path} is missing or not a regular file; it is not loaded")
    actual = sha256_of(path)
    for digest in expected:
        if actual != digest:
            raise ModelLoadError(
                f"{path} has sha256 {actual}, not {digest} as recorded when it was written; "
                "the model file was changed and is not loaded"
            )
    return path


def _manifest_digests(directory: Path, *, require: bool) -> dict[str, str] | None:
    path = directory / _MANIFEST
    if not path.is_file():
        if require:
            raise ModelLoadError(f"{directory} has no {_MANIFEST}: it is not a published version")
        return None
    try:
        files = json.loads(path.read_bytes())["files"]
        return {str(entry["path"]): str(entry["sha256"]) for entry in files}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ModelLoadError(f"{path} is unreadable ({err!r}); the model is not loaded") from None


def model_digest_metrics(checkpoint_dir: Path, model_file: str) -> dict[str, str]:
    """``{"model_sha256": ...}`` of the model file about to be reported in ``checkpoint_dir``."""
    return {MODEL_SHA256: sha256_of(checkpoint_dir / model_file)}


def copy_checkpointed_model(
    checkpoint_dir: Path, model_file: str, dest: Path, reported: Mapping[str, Any]
) -> str:
    """Copy a checkpoint's model file to ``dest`` and check it against the reported digest.

    The copy itself is hashed, so what is checked is exactly what will be loaded.

    Args:
        checkpoint_dir: The checkpoint, as a local directory.
        model_file: The framework's model file name.
        dest: Where the model goes (a private directory of this job).
        reported: The metrics reported with the checkpoint.

    Returns:
        The model file's sha256.

    Raises:
        ModelLoadError: No digest was reported, or the copy differs from it
            (``dest`` is removed).
    """
    expected = reported.get(MODEL_SHA256)
    if not isinstance(expected, str):
        raise ModelLoadError(
            f"the checkpoint in {checkpoint_dir} was reported without its {MODEL_SHA256}, "
            "so its model file cannot be trusted; delete the run's checkpoints and train again"
        )
    shutil.copyfile(checkpoint_dir / model_file, dest)
    actual = sha256_of(dest)
    if actual != expected:
        dest.unlink()
        raise ModelLoadError(
            f"{model_file} in checkpoint {checkpoint_dir} has sha256 {actual}, not the "
            f"{expected} reported when it was saved: the checkpoint was changed in storage; "
            "it is not loaded. Delete the run's checkpoints and train again"
        )
    return actual
