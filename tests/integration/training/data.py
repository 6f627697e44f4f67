"""Generated datasets for the training tests (nothing is downloaded)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification, make_regression


def classification_frame(rows: int = 1200, features: int = 8, *, seed: int = 7) -> pd.DataFrame:
    """Three classes with string labels, so the job's label encoding is exercised."""
    x, y = make_classification(
        n_samples=rows,
        n_features=features,
        n_informative=features // 2,
        n_classes=3,
        random_state=seed,
    )
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(features)])
    frame["label"] = np.array(["cat", "dog", "eel"])[y]
    return frame


def regression_frame(rows: int = 800, features: int = 6, *, seed: int = 3) -> pd.DataFrame:
    x, y = make_regression(n_samples=rows, n_features=features, noise=5.0, random_state=seed)
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(features)])
    frame["y"] = y
    return frame


def to_csv(frame: pd.DataFrame) -> bytes:
    text: str = frame.to_csv(index=False)
    return text.encode()


def to_parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()
