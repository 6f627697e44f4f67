"""The hash-based train/validation split."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rayline.training.prepare import split_mask


def frame(rows: int = 5000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.normal(size=rows), "b": rng.integers(0, 9, rows), "y": "x"})


def test_fraction_seed_and_partitioning() -> None:
    data = frame()
    mask = split_mask(data, 0.2, seed=1)
    assert 0.17 < mask.mean() < 0.23
    assert (split_mask(data, 0.2, seed=1) == mask).all()  # deterministic
    assert (split_mask(data, 0.2, seed=2) != mask).mean() > 0.2  # the seed matters
    pieces = np.concatenate(
        [split_mask(data.iloc[:1234], 0.2, 1), split_mask(data.iloc[1234:], 0.2, 1)]
    )
    assert (pieces == mask).all()  # independent of how the rows are batched


def test_duplicate_rows_fall_on_the_same_side() -> None:
    row = pd.DataFrame({"a": [1.5] * 50, "b": [3] * 50, "y": ["x"] * 50})
    mask = split_mask(row, 0.5, seed=0)
    assert mask.all() or not mask.any()
