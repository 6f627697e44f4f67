"""Checks a training spec can pass before any cluster is requested.

A Ray cluster costs seconds to minutes to start; a spec whose target column is
not in its dataset should not wait that long to be refused. Whoever requests
the training cluster (``rayline train``, the Airflow DAG) calls
:func:`check_training_input` first. It reads only what answers the question:
the columns of a bundled ``sklearn:`` dataset, the Parquet footer or the first
block of a CSV (:func:`~rayline.training.prepare.inspect_dataset`). The job
runs the same checks again on the cluster, with the same messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rayline.training.spec import TrainingSpec, load_spec

if TYPE_CHECKING:
    from rayline.config import Settings

__all__ = ["check_training_input"]


def check_training_input(
    spec: TrainingSpec | Mapping[str, Any] | str | Path, *, settings: Settings | None = None
) -> TrainingSpec:
    """Validate the spec and look at its dataset, here, without Ray.

    Checked: the spec itself; a ``file://`` dataset lies under an allowed root
    (``RAYLINE_DATA_ROOTS``); the dataset exists, is reachable and not empty;
    the target is one of its columns; the features (and a regression target)
    are numeric. A ``file://`` dataset that does not exist on this machine is
    left to the job, which checks the roots on its own file system: the
    cluster's nodes may have files this machine lacks.

    Args:
        spec: A spec, or what :func:`~rayline.training.spec.load_spec` reads.
        settings: For the S3 endpoint and credentials (default: this process's),
            the same ones the job is given.

    Returns:
        The validated spec.

    Raises:
        InvalidSpecError: The spec is malformed.
        DatasetOutsideRootsError: A local ``file://`` dataset is outside the allowed roots.
        DatasetError: (or a subclass) naming what is wrong with the data.
    """
    checked = load_spec(spec)
    ref = checked.dataset_ref
    if ref.scheme == "sklearn":
        _check_bundled(checked)
        return checked
    if ref.scheme == "file" and not Path(ref.path).exists():
        return checked
    if settings is None:
        from rayline.config import get_settings

        settings = get_settings()
    from rayline.training.prepare import inspect_dataset

    inspect_dataset(checked, settings)
    return checked


def _check_bundled(spec: TrainingSpec) -> None:
    import pyarrow as pa

    from rayline.training.datasets import load_sklearn_frame
    from rayline.training.signature import build_signature

    frame = load_sklearn_frame(spec.dataset_ref.path)
    schema = pa.Schema.from_pandas(frame, preserve_index=False)
    columns = dict(zip(schema.names, schema.types, strict=True))
    build_signature(spec.dataset_ref.uri, columns, target=spec.target, task=spec.task)
