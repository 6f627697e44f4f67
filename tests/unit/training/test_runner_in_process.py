"""One worker trains in the job's own process: same checks, artifacts and registration."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rayline.config import Settings
from rayline.metadata import ModelRegistry, create_engine_for
from rayline.metadata.migrate import upgrade
from rayline.models import VERSION_FILES, load_registered_model
from rayline.storage import open_store
from rayline.training import runner
from rayline.training.errors import DatasetError, MissingTargetError
from rayline.training.frameworks import get_framework
from rayline.training.inprocess import train_in_process
from rayline.training.runner import choose_runtime, run_training
from rayline.training.spec import load_spec


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    upgrade(url)
    return Settings(
        home=tmp_path / "home",
        database_url=url,
        artifact_uri=(tmp_path / "art").as_uri(),
        data_roots=str(tmp_path),
    )


def _spec(dataset: str, **fields: Any) -> Any:
    return load_spec(
        {
            "spec_version": 1,
            "name": "m",
            "dataset": dataset,
            "target": "label",
            "task": "classification",
            "framework": "xgboost",
            **fields,
        }
    )


def _csv(tmp_path: Path, rows: int = 300) -> Path:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(rows, 4))
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(4)])
    frame["label"] = np.where(x[:, 0] + x[:, 1] > 0, "yes", "no")
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("fields", "runtime"),
    [
        ({"framework": "sklearn", "hyperparameters": {"estimator": "random_forest"}}, "in_process"),
        ({"workers": 1}, "in_process"),
        ({"workers": 2}, "ray_train"),
        ({"workers": 1, "gpus_per_worker": 1}, "ray_train"),
    ],
)
def test_path_selection(fields: dict[str, Any], runtime: str) -> None:
    assert choose_runtime(_spec("sklearn:iris", target="target", **fields)) == runtime


@pytest.mark.parametrize(("workers", "called"), [(1, "train_in_process"), (2, "train_on_ray")])
def test_run_training_takes_the_chosen_runtime(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, workers: int, called: str
) -> None:
    from rayline.training import inprocess, ray_runtime

    seen: list[str] = []

    def stop(name: str) -> Any:
        def fake(*args: Any, **kwargs: Any) -> Any:
            seen.append(name)
            raise DatasetError("stop here")

        return fake

    monkeypatch.setattr(inprocess, "train_in_process", stop("train_in_process"))
    monkeypatch.setattr(ray_runtime, "train_on_ray", stop("train_on_ray"))
    spec = _spec("sklearn:iris", target="target", workers=workers)
    with pytest.raises(DatasetError, match="stop here"):
        run_training(spec, settings=settings, run_name="r", connect=lambda: seen.append("ray"))
    assert seen == [called]


def test_xgboost_in_process_registers_a_version_with_every_artifact(
    tmp_path: Path, settings: Settings
) -> None:
    data = _csv(tmp_path)
    spec = _spec(data.as_uri(), checkpoint_every=5, hyperparameters={"num_boost_round": 20})
    reported: list[tuple[int, dict[str, float]]] = []

    outcome = run_training(
        spec,
        settings=settings,
        run_name="run-1",
        connect=lambda: pytest.fail("the in-process runtime must not connect to Ray"),
        on_iteration=lambda i, m: reported.append((i, m)),
    )

    assert outcome.version == 1 and outcome.metrics["validation_accuracy"] > 0.8
    # Every round reaches the tracker (the whole loss curve), not only checkpoints.
    assert [i for i, _ in reported] == list(range(1, 21))
    assert set(reported[-1][1]) == {"train-logloss", "validation-logloss"}
    store = open_store(settings=settings)
    files = {key.rsplit("/", 1)[1] for key in store.list_keys(f"m/{outcome.version_id}")}
    assert files == VERSION_FILES | {"model.ubj"}
    lineage = json.loads(store.get_bytes(f"m/{outcome.version_id}/lineage.json"))
    assert lineage["runtime"] == "in_process" and lineage["iterations"] == 20
    assert lineage["dataset_sha256"] == outcome.dataset_sha256
    engine = create_engine_for(settings.database_url)
    try:
        row = ModelRegistry().get_version(engine, name="m", version=1)
        assert row.signature is not None and row.signature["output"]["classes"] == ["no", "yes"]
        predictor = load_registered_model(engine, "m", store=store)
    finally:
        engine.dispose()
    example = json.loads(store.get_bytes(f"m/{outcome.version_id}/input_example.json"))
    assert predictor.predict(example["rows"]) == example["predictions"]


def test_sklearn_regression_on_a_bundled_dataset(settings: Settings) -> None:
    spec = _spec(
        "sklearn:diabetes",
        target="target",
        task="regression",
        framework="sklearn",
        hyperparameters={"estimator": "linear"},
    )
    outcome = run_training(spec, settings=settings, run_name="r")
    assert outcome.metrics["validation_r2"] > 0.2 and outcome.framework == "sklearn"


def test_missing_target_has_the_same_message_in_both_readers(
    tmp_path: Path, settings: Settings
) -> None:
    spec = _spec(_csv(tmp_path).as_uri(), target="species")
    with pytest.raises(MissingTargetError) as checked:  # the peek, before any runtime
        run_training(spec, settings=settings, run_name="r")
    with pytest.raises(MissingTargetError) as read:  # the in-process reader itself
        train_in_process(
            spec,
            get_framework("xgboost"),
            settings,
            files=None,
            model_path=tmp_path / "model.ubj",
            started=0.0,
        )
    assert str(read.value) == str(checked.value)
    assert "'species'" in str(read.value) and "'label'" in str(read.value)


def test_missing_target_values_and_a_single_class_are_refused(
    tmp_path: Path, settings: Settings
) -> None:
    path = tmp_path / "gaps.csv"
    path.write_text("a,label\n1,0\n2,\n3,1\n")  # an empty number is null
    with pytest.raises(DatasetError, match=r"1 row\(s\) of dataset .* have no value"):
        run_training(_spec(path.as_uri()), settings=settings, run_name="r")
    path.write_text("a,label\n1,x\n2,x\n3,x\n")
    with pytest.raises(DatasetError, match="has 1 distinct value"):
        run_training(_spec(path.as_uri()), settings=settings, run_name="r")


def test_the_job_trains_without_importing_ray(tmp_path: Path, settings: Settings) -> None:
    spec = _spec(
        "sklearn:iris",
        target="target",
        framework="sklearn",
        hyperparameters={"estimator": "random_forest", "n_estimators": 10},
    )
    script = textwrap.dedent(
        f"""
        import sys
        from rayline.jobs.train import main
        status = main(["--spec", {spec.to_json()!r}])
        print("RAY_IMPORTED", sorted(m for m in sys.modules if m == "ray" or m.startswith("ray.")))
        sys.exit(status)
        """
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "RAYLINE_HOME": str(tmp_path / "home"),
        "RAYLINE_DATABASE_URL": settings.database_url,
        "RAYLINE_ARTIFACT_URI": settings.artifact_uri,
    }
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "RAY_IMPORTED []" in done.stdout
    assert "training in process" in done.stdout and "registered m version 1" in done.stdout
    assert runner.choose_runtime(spec) == "in_process"
