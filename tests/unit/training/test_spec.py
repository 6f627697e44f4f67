"""The training spec: what is accepted, and how each refusal names the problem."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rayline.training.errors import InvalidSpecError
from rayline.training.spec import TrainingSpec, load_spec


def spec(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "spec_version": 1,
        "name": "iris",
        "dataset": "sklearn:iris",
        "target": "target",
        "task": "classification",
        "framework": "xgboost",
    }
    base.update(fields)
    return base


def test_yaml_file_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(
        "spec_version: 1\nname: iris-xgb\ndataset: s3://data/iris.csv\ntarget: species\n"
        "task: classification\nframework: xgboost\nworkers: 2\n"
        "hyperparameters: {max_depth: 3}\n"
    )
    loaded = load_spec(path)
    assert loaded.workers == 2 and loaded.cpus_per_worker == 1 and loaded.gpus_per_worker == 0
    assert loaded.validation_split == 0.2 and loaded.seed == 0
    assert loaded.resolved_hyperparameters() == {"num_boost_round": 100, "max_depth": 3}
    assert loaded.dataset_ref.path == "data/iris.csv" and loaded.dataset_ref.format == "csv"


def test_inline_json_round_trips() -> None:
    loaded = load_spec(json.dumps(spec(framework="sklearn")))
    assert load_spec(loaded.to_json()) == loaded
    assert loaded.resolved_hyperparameters() == {"estimator": "random_forest"}


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"framework": "lightgbm"}, ["framework", "'xgboost', 'sklearn' or 'torch'"]),
        ({"name": "a..b"}, ["name", "'..'"]),
        ({"name": "team/model"}, ["name", "'/'"]),
        ({"name": "../etc"}, ["name"]),
        ({"task": "ranking"}, ["task"]),
        ({"dataset": "http://example/iris.csv"}, ["dataset", "s3://"]),
        ({"dataset": "sklearn:mnist"}, ["sklearn:mnist", "sklearn:iris"]),
        ({"dataset": "file://relative/x.csv"}, ["absolute"]),
        ({"dataset": "s3://bucket-only"}, ["bucket and a key"]),
        ({"dataset": "s3://b/data/table"}, ["dataset_format"]),
        ({"dataset": "file:///data/../etc/x.csv"}, ["'..'"]),
        ({"color": "blue"}, ["color", "Extra inputs"]),
        ({"framework": "sklearn", "workers": 2}, ["sklearn trains on one worker"]),
        ({"hyperparameters": {"num_boost_round": 0}}, ["num_boost_round"]),
        ({"hyperparameters": {"max_depth": {"nested": 1}}}, ["max_depth"]),
        ({"framework": "torch", "hyperparameters": {"epoch": 3}}, ["epoch"]),
        ({"framework": "sklearn", "hyperparameters": {"estimator": "svm"}}, ["estimator"]),
        ({"workers": 0}, ["workers"]),
        ({"validation_split": 0.9}, ["validation_split"]),
        ({"spec_version": 2}, ["spec_version"]),
        ({"target": ""}, ["target"]),
    ],
)
def test_refusals_name_the_field(fields: dict[str, Any], words: list[str]) -> None:
    with pytest.raises(InvalidSpecError) as caught:
        load_spec(spec(**fields))
    for word in words:
        assert word in str(caught.value)


def test_missing_version_is_refused() -> None:
    data = spec()
    del data["spec_version"]
    with pytest.raises(InvalidSpecError, match="spec_version"):
        load_spec(data)


def test_dataset_format_for_a_directory() -> None:
    loaded = load_spec(spec(dataset="s3://b/tables/iris/", dataset_format="parquet"))
    assert loaded.dataset_ref.format == "parquet"


@pytest.mark.parametrize(
    ("source", "words"),
    [("{not json", ["inline JSON", "not valid JSON"]), ("/no/such/spec.yaml", ["cannot read"])],
)
def test_unreadable_documents(source: str, words: list[str]) -> None:
    with pytest.raises(InvalidSpecError) as caught:
        load_spec(source)
    assert all(w in str(caught.value) for w in words)


def test_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(InvalidSpecError, match="mapping"):
        load_spec(path)


def test_spec_is_immutable() -> None:
    loaded = load_spec(spec())
    assert isinstance(loaded, TrainingSpec)
    with pytest.raises(ValueError, match="frozen"):
        loaded.workers = 3
