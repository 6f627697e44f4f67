"""Artifact layout, publication and the predictor, on a file:// store without Ray."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import xgboost
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestRegressor

from rayline.models import load_model, load_model_dir
from rayline.storage import ChecksumMismatchError, fetch_version, publish_version
from rayline.storage.file_store import FileArtifactStore
from rayline.training.artifacts import ModelBundle, write_artifacts
from rayline.training.errors import InvalidInputError, ModelLoadError
from rayline.training.frameworks import LoopConfig
from rayline.training.frameworks.xgboost_trainer import booster_params
from rayline.training.signature import Feature, Signature

FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


def iris_bundle(directory: Path) -> tuple[ModelBundle, np.ndarray]:
    frame = load_iris(as_frame=True).frame
    x, y = frame[FEATURES].to_numpy(), frame["target"].to_numpy()
    loop = LoopConfig(
        features=FEATURES, target="target", task="classification", num_classes=3,
        hyperparameters={"num_boost_round": 5}, checkpoint_every=5, seed=0, cpus_per_worker=1,
    )  # fmt: skip
    booster = xgboost.train(booster_params(loop), xgboost.DMatrix(x, label=y), num_boost_round=5)
    booster.save_model(str(directory / "model.ubj"))
    signature = Signature(
        features=tuple(Feature(n, "double") for n in FEATURES),
        target="target", task="classification", target_type="string",
        classes=("setosa", "versicolor", "virginica"),
    )  # fmt: skip
    bundle = ModelBundle(
        name="iris", framework="xgboost", model_file="model.ubj", signature=signature, loop=loop,
        metrics={"validation_accuracy": 0.9}, params={"num_boost_round": 5},
        spec={"name": "iris"}, lineage={"dataset_uri": "sklearn:iris"},
    )  # fmt: skip
    return bundle, booster.predict(xgboost.DMatrix(x))


def rows(n: int = 3) -> list[dict[str, float]]:
    frame = load_iris(as_frame=True).frame
    records: list[dict[str, float]] = frame[FEATURES].head(n).to_dict(orient="records")
    return records


def test_layout_publish_and_reload(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    bundle, expected = iris_bundle(out)
    write_artifacts(out, bundle)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["model.ubj", "model.json", "signature.json", "preprocessing.json", "metrics.json",
         "params.json", "spec.json", "lineage.json"]
    )  # fmt: skip
    store = FileArtifactStore(tmp_path / "store")
    ref = publish_version(store, "iris", out)

    predictor = load_model(
        store, "iris", ref.version_id, expected_manifest_sha256=ref.manifest_sha256
    )

    assert predictor.version_id == ref.version_id and predictor.framework == "xgboost"
    assert predictor.metrics == {"validation_accuracy": 0.9}
    probabilities = np.asarray(predictor.predict_proba(rows()))
    np.testing.assert_allclose(probabilities, expected[:3], rtol=1e-6)
    assert predictor.predict(rows()) == ["setosa", "setosa", "setosa"]
    # Rows may carry extra keys and come in any key order.
    shuffled = [{"extra": 1, **dict(reversed(list(r.items())))} for r in rows()]
    assert predictor.predict(shuffled) == ["setosa"] * 3


def test_tampered_model_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    bundle, _ = iris_bundle(out)
    write_artifacts(out, bundle)
    store = FileArtifactStore(tmp_path / "store")
    ref = publish_version(store, "iris", out)
    stored = tmp_path / "store" / "iris" / ref.version_id / "model.ubj"
    stored.write_bytes(stored.read_bytes()[:-1] + b"\x00")
    with pytest.raises(ChecksumMismatchError):
        load_model(store, "iris", ref.version_id)


def test_bad_rows_are_named(tmp_path: Path) -> None:
    bundle, _ = iris_bundle(tmp_path)
    write_artifacts(tmp_path, bundle)
    predictor = load_model_dir(tmp_path)
    with pytest.raises(InvalidInputError, match="petal width"):
        predictor.predict([{k: v for k, v in rows(1)[0].items() if k != "petal width (cm)"}])
    with pytest.raises(InvalidInputError, match="must be numbers"):
        predictor.predict([{**rows(1)[0], "sepal width (cm)": "wide"}])


def test_sklearn_regressor_round_trip(tmp_path: Path) -> None:
    x = np.arange(40, dtype=float).reshape(20, 2)
    model = RandomForestRegressor(n_estimators=5, random_state=0).fit(x, x.sum(axis=1))
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(model))
    loop = LoopConfig(
        features=["a", "b"], target="y", task="regression", num_classes=0,
        hyperparameters={"estimator": "random_forest"}, checkpoint_every=1, seed=0,
        cpus_per_worker=1,
    )  # fmt: skip
    signature = Signature(
        (Feature("a", "double"), Feature("b", "double")), "y", "regression", "double"
    )
    write_artifacts(tmp_path, ModelBundle("reg", "sklearn", "model.pkl", signature, loop))
    predictor = load_model_dir(tmp_path)
    assert predictor.predict([{"a": 2.0, "b": 3.0}]) == pytest.approx(model.predict([[2.0, 3.0]]))
    with pytest.raises(InvalidInputError, match="regression"):
        predictor.predict_proba([{"a": 2.0, "b": 3.0}])


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    bundle, _ = iris_bundle(tmp_path)
    write_artifacts(tmp_path, bundle)
    info = json.loads((tmp_path / "model.json").read_text())
    (tmp_path / "model.json").write_text(json.dumps({**info, "format": 99}))
    with pytest.raises(ModelLoadError, match="format 99"):
        load_model_dir(tmp_path)


class _Evil:
    """Unpickling this creates ``marker``: proof that a model file was loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (str(self.marker), "w")


def _sklearn_dir(directory: Path) -> Path:
    """A valid sklearn version in ``directory`` (no manifest: never published)."""
    directory.mkdir()
    test_sklearn_regressor_round_trip(directory)
    return directory


def _point_model_json_at(directory: Path, model_file: str) -> None:
    info = json.loads((directory / "model.json").read_text())
    (directory / "model.json").write_text(json.dumps({**info, "model_file": model_file}))


@pytest.mark.parametrize("model_file", ["../evil.pkl", "{tmp}/evil.pkl", "sub/evil.pkl", ".."])
def test_a_model_file_that_is_not_a_plain_name_is_never_loaded(
    tmp_path: Path, model_file: str
) -> None:
    version = _sklearn_dir(tmp_path / "version")
    marker = tmp_path / "unpickled"
    model_file = model_file.format(tmp=tmp_path)  # an absolute path
    target = version / model_file  # an absolute model_file replaces the directory
    if model_file != "..":
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(pickle.dumps(_Evil(marker)))
    _point_model_json_at(version, model_file)
    with pytest.raises(ModelLoadError, match="plain name"):
        load_model_dir(version)
    assert not marker.exists()


def _fetched_sklearn(tmp_path: Path) -> Path:
    """A published sklearn version, fetched back (with its manifest)."""
    store = FileArtifactStore(tmp_path / "store")
    ref = publish_version(store, "reg", _sklearn_dir(tmp_path / "version"))
    fetch_version(store, "reg", ref.version_id, tmp_path / "fetched")
    return tmp_path / "fetched"


def test_a_model_file_not_listed_in_the_manifest_is_never_loaded(tmp_path: Path) -> None:
    fetched = _fetched_sklearn(tmp_path)
    marker = tmp_path / "unpickled"
    (fetched / "extra.pkl").write_bytes(pickle.dumps(_Evil(marker)))
    _point_model_json_at(fetched, "extra.pkl")
    with pytest.raises(ModelLoadError, match="not listed in"):
        load_model_dir(fetched)
    assert not marker.exists()


def test_a_model_file_changed_after_fetching_is_never_loaded(tmp_path: Path) -> None:
    fetched = _fetched_sklearn(tmp_path)
    assert load_model_dir(fetched).framework == "sklearn"
    marker = tmp_path / "unpickled"
    (fetched / "model.pkl").write_bytes(pickle.dumps(_Evil(marker)))
    with pytest.raises(ModelLoadError, match="sha256"):
        load_model_dir(fetched)
    assert not marker.exists()


def test_an_unpublished_model_is_checked_against_its_recorded_sha256(tmp_path: Path) -> None:
    version = _sklearn_dir(tmp_path / "version")
    good = hashlib.sha256((version / "model.pkl").read_bytes()).hexdigest()
    assert load_model_dir(version, model_sha256=good).framework == "sklearn"
    with pytest.raises(ModelLoadError, match="sha256"):
        load_model_dir(version, model_sha256="0" * 64)
    with pytest.raises(ModelLoadError, match=r"no manifest\.json"):
        load_model_dir(version, require_manifest=True)
