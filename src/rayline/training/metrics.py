"""Evaluation metrics, the same for every framework (computed from predictions)."""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

__all__ = ["evaluate"]


def evaluate(task: str, scores: np.ndarray, labels: np.ndarray, *, prefix: str) -> dict[str, float]:
    """Metrics of one split.

    Args:
        task: ``classification`` (``scores`` are ``[n, k]`` probabilities,
            ``labels`` class indices) or ``regression`` (values).
        scores: Model output.
        labels: True class indices or values.
        prefix: Put before each metric name, e.g. ``validation``.

    Returns:
        ``{prefix}_accuracy``, ``_f1_macro``, ``_log_loss`` (and ``_roc_auc`` for
        two classes), or ``{prefix}_rmse``, ``_mae``, ``_r2``.
    """
    if task == "classification":
        k = scores.shape[1]
        predicted = np.argmax(scores, axis=1)
        out = {
            "accuracy": skm.accuracy_score(labels, predicted),
            "f1_macro": skm.f1_score(labels, predicted, average="macro", labels=range(k)),
            "log_loss": skm.log_loss(labels, _normalised(scores), labels=range(k)),
        }
        if k == 2 and len(np.unique(labels)) == 2:
            out["roc_auc"] = skm.roc_auc_score(labels, scores[:, 1])
    else:
        out = {
            "rmse": float(np.sqrt(skm.mean_squared_error(labels, scores))),
            "mae": skm.mean_absolute_error(labels, scores),
        }
        if len(labels) > 1:
            out["r2"] = skm.r2_score(labels, scores)
    # Only finite numbers: NaN is not JSON, and the metadata store keeps these as JSON.
    return {
        f"{prefix}_{name}": round(float(value), 6)
        for name, value in out.items()
        if np.isfinite(value)
    }


def _normalised(scores: np.ndarray) -> np.ndarray:
    # float32 model outputs drift from summing to exactly 1; log_loss warns about it.
    clipped = np.clip(scores.astype(np.float64), 1e-15, 1.0)
    result: np.ndarray = clipped / clipped.sum(axis=1, keepdims=True)
    return result
