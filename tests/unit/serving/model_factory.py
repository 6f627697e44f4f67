"""Real model artifacts for serving tests, in the exact layout training publishes.

A small scikit-learn or XGBoost model is trained here on scikit-learn's bundled
iris data, written with :func:`rayline.training.artifacts.write_artifacts`,
published with ``rayline.storage`` and registered with ``ModelRegistry``: the
same files and rows a training job produces, made in a second.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.datasets import load_iris
from sqlalchemy import Engine

from rayline.metadata import ModelRegistry, ModelVersion
from rayline.models import Predictor, load_model_dir
from rayline.storage import ArtifactStore, VersionRef, publish_version
from rayline.training.artifacts import ModelBundle, write_artifacts
from rayline.training.frameworks import LoopConfig
from rayline.training.signature import Feature, Signature

__all__ = ["IrisModel", "iris_rows", "make_iris_model", "publish_iris"]


@dataclass
class IrisModel:
    """A model version on disk, and its predictor loaded back the serving way."""

    directory: Path
    predictor: Predictor
    feature_names: list[str]


def iris_rows(count: int = 10, *, seed: int = 0) -> np.ndarray:
    """Rows of iris features (a fixed random sample, jittered so they are new)."""
    data = load_iris()
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(data.data), size=count, replace=count > len(data.data))
    jitter = rng.normal(0, 0.05, size=(count, data.data.shape[1]))
    rows: np.ndarray = np.round(data.data[picks] + jitter, 3)
    return rows


def make_iris_model(
    directory: Path, *, name: str = "iris", framework: str = "sklearn", variant: int = 0
) -> IrisModel:
    """Train a small iris classifier and write its version directory.

    ``variant`` changes the model (and so its bytes and sha256): variant 1 of a
    name is a different model than variant 0.
    """
    data = load_iris()
    names = [str(n) for n in data.feature_names]
    directory.mkdir(parents=True, exist_ok=True)
    if framework == "sklearn":
        from sklearn.linear_model import LogisticRegression

        model: Any = LogisticRegression(max_iter=300 + variant, C=1.0 / (1 + variant)).fit(
            data.data, data.target
        )
        model_file = "model.pkl"
        (directory / model_file).write_bytes(pickle.dumps(model))
    elif framework == "xgboost":
        import xgboost

        params = {"objective": "multi:softprob", "num_class": 3, "max_depth": 3, "seed": variant}
        booster = xgboost.train(
            params, xgboost.DMatrix(data.data, label=data.target), num_boost_round=20 + variant
        )
        model_file = "model.ubj"
        booster.save_model(str(directory / model_file))
    else:
        raise ValueError(f"no test model for framework {framework!r}")
    signature = Signature(
        features=tuple(Feature(name=n, type="double") for n in names),
        target="species",
        task="classification",
        target_type="int64",
        classes=(0, 1, 2),
    )
    loop = LoopConfig(
        features=names,
        target="species",
        task="classification",
        num_classes=3,
        hyperparameters={},
        checkpoint_every=1,
        seed=variant,
        cpus_per_worker=1,
    )
    bundle = ModelBundle(
        name=name,
        framework=framework,
        model_file=model_file,
        signature=signature,
        loop=loop,
        metrics={"validation_accuracy": 0.95 - variant / 100},
    )
    write_artifacts(directory, bundle)
    return IrisModel(directory, load_model_dir(directory), names)


def publish_iris(
    store: ArtifactStore,
    engine: Engine,
    workdir: Path,
    *,
    name: str = "iris",
    framework: str = "sklearn",
    variant: int = 0,
) -> tuple[ModelVersion, VersionRef, IrisModel]:
    """Train, publish and register one version of ``name``; returns the registry row too."""
    model = make_iris_model(
        workdir / f"{name}-v{variant}", name=name, framework=framework, variant=variant
    )
    ref = publish_version(store, name, model.directory, metadata={"framework": framework})
    row = ModelRegistry().register_version(
        engine,
        name=name,
        artifact_uri=ref.uri,
        sha256=ref.manifest_sha256,
        framework=framework,
        task="classification",
        metrics=model.predictor.metrics,
        signature=model.predictor.signature.to_dict(),
    )
    return row, ref, model
