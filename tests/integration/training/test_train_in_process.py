"""One worker trains in the job's own process: no Ray Train actors, the same version."""

from __future__ import annotations

import hashlib
import json

import pytest

from rayline.metadata import ModelRegistry
from rayline.models import load_registered_model
from rayline.storage import open_store
from tests.integration.training.conftest import TrainingEnv
from tests.integration.training.data import classification_frame, to_parquet
from tests.integration.training.helpers import list_actors, run_job, spec_for
from tests.integration.training.test_train_jobs import LAYOUT

pytestmark = pytest.mark.integration

_RAY_TRAIN_ACTORS = ("TrainController", "RayTrainWorker")


def _ray_train_actors(env: TrainingEnv) -> int:
    assert env.cluster.dashboard_url is not None
    actors = list_actors(env)
    return sum(1 for actor in actors if actor.class_name in _RAY_TRAIN_ACTORS)


def test_xgboost_on_one_worker_from_s3_parquet_trains_in_the_driver(
    training_env: TrainingEnv,
) -> None:
    env = training_env
    data = to_parquet(classification_frame(rows=5000, features=10))
    uri = env.s3_put("data/one.parquet", data)
    spec = spec_for(
        "clf-one",
        uri,
        workers=1,
        cpus_per_worker=2,
        checkpoint_every=20,
        hyperparameters={"num_boost_round": 60, "max_depth": 4},
    )
    before = _ray_train_actors(env)

    outcome = run_job(env, spec)

    assert outcome.succeeded, outcome.describe_failure()
    assert _ray_train_actors(env) == before  # no controller, no worker group
    assert "training in process" in outcome.logs
    assert "xgboost: training 60 rounds in process" in outcome.logs
    assert "xgboost: iteration 60: train-mlogloss" in outcome.logs
    assert "TrainController" not in outcome.logs and "ray.data" not in outcome.logs
    result = outcome.result
    assert result is not None and result.metrics["validation_accuracy"] > 0.6
    row = ModelRegistry().get_version(env.engine, name="clf-one", version=1)
    assert row.dataset_sha256 == hashlib.sha256(data).hexdigest()
    assert row.signature is not None
    assert row.signature["output"]["classes"] == ["cat", "dog", "eel"]
    store = open_store(settings=env.settings)
    files = {key.rsplit("/", 1)[1] for key in store.list_keys(f"clf-one/{result.version_id}")}
    assert files == LAYOUT | {"model.ubj"}
    lineage = json.loads(store.get_bytes(f"clf-one/{result.version_id}/lineage.json"))
    assert lineage["runtime"] == "in_process" and lineage["iterations"] == 60
    example = json.loads(store.get_bytes(f"clf-one/{result.version_id}/input_example.json"))
    predictor = load_registered_model(env.engine, "clf-one", store=store)
    assert predictor.predict(example["rows"]) == example["predictions"]
