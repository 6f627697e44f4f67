"""Turn a dataset into what the trainers take: checked, encoded, split Ray Datasets.

Runs in the job's driver before any training worker starts, so every problem
with the data (missing target, empty, non-numeric features, a single class)
fails the job here, fast, with a message that names it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from rayline.training.datasets import (
    DatasetFiles,
    list_dataset_files,
    peek_columns,
    read_dataset,
)
from rayline.training.errors import DatasetError, EmptyDatasetError
from rayline.training.signature import Signature, build_signature

if TYPE_CHECKING:
    import ray.data

    from rayline.config import Settings
    from rayline.training.spec import TrainingSpec

__all__ = [
    "PreparedData",
    "check_split",
    "encode_and_split",
    "encode_target",
    "inspect_dataset",
    "prepare_data",
    "split_mask",
]

_MAX_CLASSES = 10_000


@dataclass(frozen=True)
class PreparedData:
    """The checked dataset, split and ready for the trainers.

    Attributes:
        train: Training rows; classification targets are class indices.
        validation: Held-out rows, encoded the same way.
        signature: Features, target and class labels (index ``i`` is ``classes[i]``).
        dataset_sha256: Content hash of the source data (lineage).
        rows: Rows in the source dataset.
    """

    train: ray.data.Dataset
    validation: ray.data.Dataset
    signature: Signature
    dataset_sha256: str
    rows: int


def inspect_dataset(spec: TrainingSpec, settings: Settings) -> DatasetFiles | None:
    """Find the dataset and check its columns, without Ray: seconds, not a cluster round trip.

    Lists the files (not found, unreachable, all empty) and peeks at the first
    one (no rows, missing target, non-numeric features). The bundled
    scikit-learn datasets need no check.

    Returns:
        The files, for :func:`prepare_data`; ``None`` for a bundled dataset.

    Raises:
        DatasetError: (or a subclass) naming what is wrong with the data.
    """
    ref = spec.dataset_ref
    if ref.scheme == "sklearn":
        return None
    files = list_dataset_files(ref, settings)
    columns, rows = peek_columns(files)
    if rows == 0 and len(files.paths) == 1:
        raise EmptyDatasetError(ref.uri)
    if rows > 0:
        build_signature(ref.uri, columns, target=spec.target, task=spec.task)
    return files


def prepare_data(
    spec: TrainingSpec, settings: Settings, *, files: DatasetFiles | None = None
) -> PreparedData:
    """Read, check, encode and split the spec's dataset.

    Args:
        spec: The spec.
        settings: For the S3 endpoint and credentials.
        files: The dataset's files, from :func:`inspect_dataset`.

    Raises:
        DatasetError: (or a subclass) naming what is wrong with the data.
    """
    ref = spec.dataset_ref
    dataset, digest = read_dataset(ref, settings, files=files)
    rows = dataset.count()
    schema = dataset.schema()
    if rows == 0 or schema is None:
        raise EmptyDatasetError(ref.uri)
    columns = dict(zip(schema.names, schema.types, strict=True))
    signature = build_signature(ref.uri, columns, target=spec.target, task=spec.task)
    dataset = dataset.select_columns([*signature.feature_names, spec.target])
    missing, values = _profile_target(dataset, spec.target)
    signature, index = encode_target(spec, signature, missing, values)
    train, validation = (
        dataset.map_batches(
            lambda batch, keep=keep: encode_and_split(
                batch, spec.target, index, spec.validation_split, spec.seed, keep
            ),
            batch_format="pandas",
            batch_size=None,  # whole blocks: the split does not depend on batching
        ).materialize()
        for keep in ("train", "validation")
    )
    check_split(spec, rows, train.count(), validation.count())
    return PreparedData(
        train=train, validation=validation, signature=signature, dataset_sha256=digest, rows=rows
    )


def _profile_target(dataset: ray.data.Dataset, target: str) -> tuple[int, set[Any]]:
    """One pass over the data: rows without a target, and the target's distinct values.

    Distinct values are collected only up to a bound per batch: a column with
    more than that is a regression target, whatever the spec says.
    """
    rows = dataset.map_batches(
        lambda batch: _target_stats(batch, target), batch_format="pandas", batch_size=None
    ).take_all()
    missing = sum(int(row["missing"]) for row in rows)
    values: set[Any] = set()
    for row in rows:
        values.update(json.loads(row["values"]))
    return missing, values


def _target_stats(batch: pd.DataFrame, target: str) -> pd.DataFrame:
    column = batch[target]
    distinct = column.dropna().unique()[: _MAX_CLASSES + 1]
    plain = [v.item() if hasattr(v, "item") else v for v in distinct]
    return pd.DataFrame({"missing": [int(column.isna().sum())], "values": [json.dumps(plain)]})


def encode_target(
    spec: TrainingSpec, signature: Signature, missing: int, values: set[Any]
) -> tuple[Signature, dict[Any, int] | None]:
    """Refuse rows without a target; for classification, the classes and their indices.

    Args:
        spec: The spec (dataset URI, target, task).
        signature: The checked signature, without classes.
        missing: Rows whose target is null.
        values: The target's distinct values (at most a bound more than ``_MAX_CLASSES``).

    Returns:
        The signature with its classes, and class -> index (``None`` for regression).

    Raises:
        DatasetError: Targets are missing, or there are fewer than 2 or too many classes.
    """
    if missing:
        raise DatasetError(
            f"{missing} row(s) of dataset {spec.dataset_ref.uri} have no value in target column "
            f"{spec.target!r}; drop or fill them"
        )
    if spec.task != "classification":
        return signature, None
    classes = _classes(values, spec.target, spec.dataset_ref.uri)
    return signature.with_classes(classes), {c: i for i, c in enumerate(classes)}


def check_split(spec: TrainingSpec, rows: int, train: int, validation: int) -> None:
    """Refuse a split that left either side empty.

    Raises:
        DatasetError: Naming the row count and the validation share.
    """
    if train == 0 or validation == 0:
        raise DatasetError(
            f"dataset {spec.dataset_ref.uri} has {rows} row(s): too few to hold out "
            f"validation_split={spec.validation_split:g} and still train; add rows"
        )


def _classes(values: set[Any], target: str, uri: str) -> list[Any]:
    if len(values) < 2:
        raise DatasetError(
            f"target column {target!r} of dataset {uri} has {len(values)} distinct value(s); "
            "classification needs at least 2 classes"
        )
    if len(values) > _MAX_CLASSES:
        raise DatasetError(
            f"target column {target!r} of dataset {uri} has over {_MAX_CLASSES} distinct "
            "values; is this a regression task? set `task: regression`"
        )
    try:
        return sorted(values)
    except TypeError:  # mixed types: keep a stable, readable order
        return sorted(values, key=str)


def split_mask(batch: pd.DataFrame, fraction: float, seed: int) -> np.ndarray:
    """True for the rows of ``batch`` that belong to the validation split.

    The split is a hash of each row's content and the seed: deterministic for a
    seed, independent of partitioning and row order, needs no shuffle, and puts
    duplicate rows on the same side (no train/validation leakage).
    """
    hashes = pd.util.hash_pandas_object(batch, index=False).to_numpy(dtype=np.uint64)
    mixed = _mix(hashes ^ np.uint64(_seed_bits(seed)))
    mask: np.ndarray = (mixed % np.uint64(1_000_000)) < np.uint64(round(fraction * 1_000_000))
    return mask


def _seed_bits(seed: int) -> int:
    return int.from_bytes(hashlib.sha256(f"rayline-split-{seed}".encode()).digest()[:8], "big")


def _mix(z: np.ndarray) -> np.ndarray:
    # splitmix64's finaliser: every input bit (and so the seed) moves every output bit.
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    mixed: np.ndarray = z ^ (z >> np.uint64(31))
    return mixed


def encode_and_split(
    batch: pd.DataFrame,
    target: str,
    index: dict[Any, int] | None,
    fraction: float,
    seed: int,
    keep: str,
) -> pd.DataFrame:
    """The ``keep`` side (``train`` or ``validation``) of ``batch``, targets as class indices."""
    in_validation = split_mask(batch, fraction, seed)
    chosen = batch[in_validation if keep == "validation" else ~in_validation].copy()
    if index is not None:
        chosen[target] = chosen[target].map(index).astype("int64")
    return chosen
