"""The DAG's param schemas: generated from the pydantic models, fit for Airflow's Param."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, get_args

import jsonschema
import pytest
from airflow.sdk import DAG
from pydantic import BaseModel

from rayline.clusters.schemas import ClusterCreate
from rayline.jobs.requests import DeployRequest
from rayline.orchestration import params
from rayline.orchestration.params import DEFAULT_SERVING, DEFAULT_TRAINING
from rayline.serving.spec import ServingSpec
from rayline.training.frameworks import FRAMEWORKS
from rayline.training.params import FRAMEWORK_PARAMS
from rayline.training.spec import Framework, TrainingSpec

SCHEMAS = {
    "training": params.training_schema(),
    "training_cluster": params.cluster_schema("training"),
    "serving": params.serving_schema(),
    "serving_cluster": params.cluster_schema("serving"),
}


def _valid(schema: dict[str, Any], value: Any) -> bool:
    return jsonschema.Draft202012Validator(schema).is_valid(value)


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_schemas_are_self_contained_with_a_plain_top_level(name: str) -> None:
    schema = SCHEMAS[name]
    text = json.dumps(schema)
    assert "$ref" not in text and "$defs" not in text
    assert schema["type"] == "object"  # the trigger form shows a JSON editor
    # Airflow's Param keeps these beside its schema; the title would replace the label.
    assert not {"title", "description", "default", "source"} & set(schema)
    jsonschema.Draft202012Validator.check_schema(schema)


def test_schemas_name_the_fields_of_their_models() -> None:
    def fields(model: type[BaseModel]) -> set[str]:
        return set(model.model_fields)

    assert set(SCHEMAS["training"]["properties"]) == fields(TrainingSpec)
    assert set(SCHEMAS["serving_cluster"]["properties"]) == fields(ClusterCreate) - {"request_id"}
    assert set(SCHEMAS["training_cluster"]["properties"]) == fields(ClusterCreate) - {"request_id"}
    serving = SCHEMAS["serving"]["properties"]
    assert set(serving) == {*params.SERVING_FIELDS, "sample_request"}
    assert set(params.SERVING_FIELDS) <= fields(DeployRequest)
    assert set(serving["spec"]["properties"]) == fields(ServingSpec)


def test_the_framework_list_is_the_registry() -> None:
    assert SCHEMAS["training"]["properties"]["framework"]["enum"] == list(FRAMEWORKS)
    # The spec's type and the hyperparameter models name the same frameworks.
    assert set(get_args(Framework)) == set(FRAMEWORKS) == set(FRAMEWORK_PARAMS)


def test_the_schemas_accept_what_the_models_accept() -> None:
    training = {**DEFAULT_TRAINING, "framework": "xgboost", "workers": 4, "gpus_per_worker": 1}
    TrainingSpec.model_validate(training)
    assert _valid(SCHEMAS["training"], training)
    cluster = {"purpose": "training", "worker": {"cpus": 2, "custom": {"ssd": 1}}}
    assert _valid(SCHEMAS["training_cluster"], cluster)
    assert _valid(SCHEMAS["serving"], {**DEFAULT_SERVING, "port": 8000, "mode": "docker"})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("training", {**DEFAULT_TRAINING, "name": "../escape"}),
        ("training", {**DEFAULT_TRAINING, "dataset_format": "json"}),
        ("training_cluster", {"purpose": "training", "request_id": "mine"}),
        ("training_cluster", {"purpose": "training", "worker": {"cpus": -1}}),
        ("serving_cluster", {"purpose": "serving", "name": "Not_A_DNS_Label"}),
        ("serving", {**DEFAULT_SERVING, "spec": {"max_batch_size": 0}}),
    ],
)
def test_the_schemas_refuse_what_the_models_refuse(name: str, value: dict[str, Any]) -> None:
    assert not _valid(SCHEMAS[name], value)


def test_a_recursive_model_is_refused_with_a_reason() -> None:
    class Node(BaseModel):
        children: list[Node] = []

    with pytest.raises(ValueError, match="refers to itself"):
        params.model_schema(Node)


def test_the_params_survive_airflows_dag_serialization() -> None:
    """The scheduler and the API server load the DAG from its serialized form."""
    from airflow.serialization.serialized_objects import DagSerialization

    with DAG("params_roundtrip", schedule=None, start_date=datetime(2025, 1, 1)) as dag:
        dag.params.update(params.dag_params())
    loaded = DagSerialization.from_dict(DagSerialization.to_dict(dag))

    for name, schema in SCHEMAS.items():
        param = loaded.params.get_param(name)
        assert param.schema == schema
        assert param.resolve(raises=True) == dag.params[name]  # the defaults are valid
