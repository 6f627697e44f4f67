"""Metrics from predictions."""

from __future__ import annotations

import numpy as np
import pytest

from rayline.training.metrics import evaluate


def test_classification() -> None:
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], dtype=np.float32)
    out = evaluate("classification", scores, np.array([0, 1, 1]), prefix="validation")
    assert out["validation_accuracy"] == pytest.approx(2 / 3, abs=1e-6)
    assert set(out) == {
        "validation_accuracy", "validation_f1_macro", "validation_log_loss", "validation_roc_auc",
    }  # fmt: skip


def test_regression_skips_what_is_undefined() -> None:
    out = evaluate("regression", np.array([1.0, 2.0]), np.array([1.0, 3.0]), prefix="train")
    assert out == {"train_rmse": pytest.approx(0.707107), "train_mae": 0.5, "train_r2": 0.5}
    assert "train_r2" not in evaluate(
        "regression", np.array([1.0]), np.array([2.0]), prefix="train"
    )
