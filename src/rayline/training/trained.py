"""What a training runtime hands over to publication, whichever runtime trained.

Both runtimes (in process for one worker, Ray Train for several) end with a
model file in a local directory and the rows to score it on; everything after
that (metrics, artifacts, manifest, publish, register) is the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import pandas as pd

    from rayline.training.frameworks import LoopConfig
    from rayline.training.signature import Signature

__all__ = ["EVAL_MAX_ROWS", "Runtime", "Trained"]

#: ``in_process``: the job's driver trains alone; ``ray_train``: a Ray Train worker group.
Runtime = Literal["in_process", "ray_train"]

# Metrics are computed in the driver on at most this many rows of each split.
EVAL_MAX_ROWS = 200_000


@dataclass(frozen=True)
class Trained:
    """A trained model, not yet published.

    Attributes:
        runtime: Which runtime trained it.
        model_path: The model file, in the framework's format.
        model_sha256: Its sha256 as recorded when it was written (checked before loading).
        signature: Features, target and classes.
        loop: The loop config it was trained with (preprocessing included).
        train: Up to :data:`EVAL_MAX_ROWS` training rows, targets encoded.
        validation: Up to :data:`EVAL_MAX_ROWS` validation rows, encoded the same way.
        dataset_sha256: Content hash of the source data.
        rows: Rows of the source data.
        iterations: Rounds or epochs in the final model.
        resumed_from: The checkpoint's iteration the run resumed from (0: none).
    """

    runtime: Runtime
    model_path: Path
    model_sha256: str
    signature: Signature
    loop: LoopConfig
    train: pd.DataFrame
    validation: pd.DataFrame
    dataset_sha256: str
    rows: int
    iterations: int
    resumed_from: int = 0
