"""The single-worker runtime: train in the job's own driver process, no Ray at all.

One worker gains nothing from Ray Train's controller, worker group and Ray
Data's tasks, and pays seconds for each process they start. Here the dataset
is read straight with pyarrow (:mod:`rayline.training.tabular`), checked,
encoded and split exactly as :mod:`rayline.training.prepare` does it on Ray
Data (the same split mask, class order and messages), and the framework fits
in this process with ``cpus_per_worker`` threads. Per-iteration metrics come
out of one place, :func:`report_iteration`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rayline.training.errors import EmptyDatasetError
from rayline.training.frameworks import LoopConfig
from rayline.training.frameworks.base import IterationCallback, log
from rayline.training.model_files import sha256_of
from rayline.training.prepare import check_split, encode_and_split, encode_target
from rayline.training.signature import build_signature
from rayline.training.tabular import read_frame
from rayline.training.trained import EVAL_MAX_ROWS, Trained

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from rayline.config import Settings
    from rayline.training.datasets import DatasetFiles
    from rayline.training.frameworks import Framework
    from rayline.training.spec import TrainingSpec

__all__ = ["report_iteration", "train_in_process"]

_PREFLIGHT_ROWS = 64
_MAX_CLASSES_SEEN = 10_001  # prepare's bound + 1: enough to tell "too many classes"


def train_in_process(
    spec: TrainingSpec,
    framework: Framework,
    settings: Settings,
    *,
    files: DatasetFiles | None,
    model_path: Path,
    started: float,
    on_iteration: IterationCallback | None = None,
) -> Trained:
    """Read, check, split and train ``spec`` here; save the model at ``model_path``.

    Args:
        spec: The spec (``workers == 1``).
        framework: Its framework.
        settings: For the S3 endpoint and credentials.
        files: The dataset's files, from :func:`~rayline.training.prepare.inspect_dataset`.
        model_path: Where the model file goes.
        started: ``time.monotonic()`` when the job started checking the data.
        on_iteration: Also called with each iteration's metrics (after logging them).

    Raises:
        DatasetError: (or a subclass) naming what is wrong with the data.
        InvalidSpecError: The framework refused the hyperparameters.
    """
    ref = spec.dataset_ref
    loaded = read_frame(ref, settings, files=files)
    if len(loaded.frame) == 0:
        raise EmptyDatasetError(ref.uri)
    signature = build_signature(ref.uri, loaded.columns, target=spec.target, task=spec.task)
    frame = loaded.frame[[*signature.feature_names, spec.target]]
    target = frame[spec.target]
    values = {_plain(v) for v in target.dropna().unique()[:_MAX_CLASSES_SEEN]}
    signature, index = encode_target(spec, signature, int(target.isna().sum()), values)
    train, validation = (
        encode_and_split(frame, spec.target, index, spec.validation_split, spec.seed, keep)
        for keep in ("train", "validation")
    )
    check_split(spec, len(frame), len(train), len(validation))
    loop = LoopConfig(
        features=signature.feature_names,
        target=spec.target,
        task=spec.task,
        num_classes=len(signature.classes or ()),
        hyperparameters=spec.resolved_hyperparameters(),
        checkpoint_every=spec.checkpoint_every,
        seed=spec.seed,
        cpus_per_worker=spec.cpus_per_worker,
        use_gpu=False,
    )
    loop = LoopConfig(**{**loop.to_dict(), "preprocessing": framework.preprocessing(loop, train)})
    framework.preflight(loop, train.head(_PREFLIGHT_ROWS))
    log(
        f"data ready in {time.monotonic() - started:.1f} s: {len(frame)} rows, "
        f"{len(loop.features)} features, {len(train)} train / {len(validation)} validation "
        "(read with pyarrow; training in process)"
    )
    started = time.monotonic()
    iterations = framework.fit_in_process(
        loop,
        train,
        validation,
        model_path,
        # Every iteration reaches the tracker (the whole curve); the log shows
        # every checkpoint_every-th.
        lambda iteration, metrics: report_iteration(
            spec.framework,
            iteration,
            metrics,
            on_iteration,
            show=iteration % spec.checkpoint_every == 0,
        ),
    )
    log(f"trained in {time.monotonic() - started:.1f} s")
    return Trained(
        runtime="in_process",
        model_path=model_path,
        model_sha256=sha256_of(model_path),
        signature=signature,
        loop=loop,
        train=_head(train),
        validation=_head(validation),
        dataset_sha256=loaded.sha256,
        rows=len(frame),
        iterations=iterations,
    )


def report_iteration(
    framework: str,
    iteration: int,
    metrics: dict[str, float],
    also: IterationCallback | None = None,
    *,
    show: bool = True,
) -> None:
    """Log one iteration's metrics (when ``show``), then hand them to ``also`` (a
    tracking hook), if any."""
    if show:
        shown = ", ".join(f"{name} {value:.4g}" for name, value in sorted(metrics.items()))
        log(f"{framework}: iteration {iteration}" + (f": {shown}" if shown else ""))
    if also is not None:
        also(iteration, metrics)


def _head(frame: pd.DataFrame) -> pd.DataFrame:
    return frame if len(frame) <= EVAL_MAX_ROWS else frame.head(EVAL_MAX_ROWS)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
