"""A Ray Train checkpoint's model file is hashed when reported and checked before it is loaded.

The workers' report calls are driven here with ``ray.train`` stubbed (no Ray
cluster): what matters is that each report carries the digest of the model
file in its checkpoint, and that a file changed afterwards is never unpickled.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
import ray.train
import xgboost

from rayline.training.errors import ModelLoadError
from rayline.training.frameworks import LoopConfig, sklearn_trainer, xgboost_trainer
from rayline.training.model_files import MODEL_SHA256, copy_checkpointed_model


def _loop(**fields: Any) -> LoopConfig:
    values: dict[str, Any] = {
        "features": ["a", "b"], "target": "y", "task": "classification", "num_classes": 2,
        "hyperparameters": {"estimator": "linear"}, "checkpoint_every": 1, "seed": 0,
        "cpus_per_worker": 1,
    }  # fmt: skip
    return LoopConfig(**{**values, **fields})


class _Reports:
    """Stands in for ``ray.train.report``: keeps each report's metrics and model bytes."""

    def __init__(self, model_file: str) -> None:
        self.model_file = model_file
        self.seen: list[tuple[dict[str, Any], bytes | None]] = []

    def __call__(self, metrics: dict[str, Any], checkpoint: Any = None) -> None:
        data = Path(checkpoint.path, self.model_file).read_bytes() if checkpoint else None
        self.seen.append((dict(metrics), data))


@pytest.fixture
def reports(monkeypatch: pytest.MonkeyPatch) -> _Reports:
    context = SimpleNamespace(get_world_rank=lambda: 0, get_world_size=lambda: 1)
    monkeypatch.setattr(ray.train, "get_context", lambda: context)
    monkeypatch.setattr(ray.train, "get_checkpoint", lambda: None)
    return _Reports("model.pkl")


def _assert_digest_matches(reports: _Reports) -> None:
    assert reports.seen
    for metrics, data in reports.seen:
        assert data is not None
        assert metrics[MODEL_SHA256] == hashlib.sha256(data).hexdigest()


def test_the_sklearn_worker_reports_its_model_digest(
    reports: _Reports, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ray.train, "report", reports)
    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0], "y": [0, 1, 0, 1]})
    shard = SimpleNamespace(to_pandas=lambda: frame)
    monkeypatch.setattr(sklearn_trainer, "worker_shard", lambda raw, split: shard)
    sklearn_trainer._train_loop(_loop().to_dict())
    _assert_digest_matches(reports)


def test_a_restarted_sklearn_worker_reports_the_digest_again(
    reports: _Reports, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "model.pkl").write_bytes(pickle.dumps({"fitted": True}))
    monkeypatch.setattr(ray.train, "report", reports)
    monkeypatch.setattr(
        ray.train, "get_checkpoint", lambda: ray.train.Checkpoint.from_directory(tmp_path)
    )
    sklearn_trainer._train_loop(_loop().to_dict())
    _assert_digest_matches(reports)


def test_the_xgboost_worker_reports_its_model_digest(
    reports: _Reports, monkeypatch: pytest.MonkeyPatch
) -> None:
    reports.model_file = "model.ubj"
    monkeypatch.setattr(ray.train, "report", reports)
    x = np.arange(20, dtype=float).reshape(10, 2)
    booster = xgboost.train({"nthread": 1}, xgboost.DMatrix(x, label=x.sum(axis=1)), 2)
    xgboost_trainer._Checkpointer(every=1, resumed_from=0)._report(booster, None)
    _assert_digest_matches(reports)


def _checkpoint(tmp_path: Path, data: bytes) -> tuple[Path, dict[str, Any]]:
    directory = tmp_path / "checkpoint_000001"
    directory.mkdir()
    (directory / "model.pkl").write_bytes(data)
    return directory, {"iteration": 1, MODEL_SHA256: hashlib.sha256(data).hexdigest()}


def test_an_intact_checkpoint_model_is_copied(tmp_path: Path) -> None:
    data = pickle.dumps({"fitted": True})
    directory, reported = _checkpoint(tmp_path, data)
    digest = copy_checkpointed_model(directory, "model.pkl", tmp_path / "model.pkl", reported)
    assert digest == reported[MODEL_SHA256]
    assert (tmp_path / "model.pkl").read_bytes() == data


def test_a_checkpoint_model_changed_in_storage_is_refused(tmp_path: Path) -> None:
    directory, reported = _checkpoint(tmp_path, pickle.dumps({"fitted": True}))
    (directory / "model.pkl").write_bytes(pickle.dumps({"fitted": "by someone else"}))
    dest = tmp_path / "model.pkl"
    with pytest.raises(ModelLoadError, match="checkpoint was changed in storage"):
        copy_checkpointed_model(directory, "model.pkl", dest, reported)
    assert not dest.exists()  # nothing is left behind to load


def test_a_checkpoint_reported_without_a_digest_is_refused(tmp_path: Path) -> None:
    directory, _ = _checkpoint(tmp_path, b"model")
    with pytest.raises(ModelLoadError, match=MODEL_SHA256):
        copy_checkpointed_model(directory, "model.pkl", tmp_path / "m.pkl", {"iteration": 1})
