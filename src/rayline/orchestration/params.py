"""The `rayline_train_and_serve` DAG's parameters: defaults and JSON schemas.

Airflow validates a run's ``conf`` against these schemas (with ``jsonschema``)
before any task runs, so a typo in a spec fails the trigger, not a task minutes
in. The schemas are generated from the pydantic models that validate the same
documents again where they are used: `rayline.training.spec.TrainingSpec` (its
framework list taken from the framework registry,
`rayline.training.frameworks.FRAMEWORKS`), `rayline.clusters.schemas.ClusterCreate`
and the serving fields of `rayline.jobs.requests.DeployRequest`. A field added
to one of those models is accepted here as it is.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from airflow.sdk import Param
from pydantic import BaseModel

from rayline.clusters.schemas import ClusterCreate
from rayline.jobs.requests import DeployRequest
from rayline.training.frameworks import FRAMEWORKS
from rayline.training.spec import TrainingSpec

__all__ = [
    "DEFAULT_SERVING",
    "DEFAULT_TRAINING",
    "cluster_schema",
    "dag_params",
    "model_schema",
    "serving_schema",
    "training_schema",
]

#: A small sklearn classifier on the iris data scikit-learn ships (nothing downloaded).
DEFAULT_TRAINING: dict[str, Any] = {
    "spec_version": 1,
    "name": "iris",
    "dataset": "sklearn:iris",
    "target": "target",
    "task": "classification",
    "framework": "sklearn",
    "hyperparameters": {},
    "workers": 1,
    "cpus_per_worker": 1,
    "seed": 0,
}

#: How the model is served (port None: the deploy job picks a free one) and the
#: request that proves it answers.
DEFAULT_SERVING: dict[str, Any] = {
    "port": None,
    "spec": {},
    "mode": None,
    "labels": {},
    "sample_request": {"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]},
}

#: The `DeployRequest` fields a run chooses; the deploy task fills in the rest.
SERVING_FIELDS = ("port", "spec", "mode", "labels")

# Keys Airflow's Param keeps beside its schema: when a serialized DAG is loaded,
# the schema's own keys become keyword arguments next to these, so a schema
# holding one of them cannot be loaded. "title" would replace the param's name
# as its label in the trigger form.
_PARAM_KEYS = frozenset({"default", "description", "source", "title"})
_DEFS_PREFIX = "#/$defs/"


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema, self-contained and fit to be an Airflow Param's.

    References to ``$defs`` are inlined, so each property's schema stands alone
    (the trigger form and a schema built from parts read it without the root),
    and the top level drops the keys Airflow's Param keeps beside its schema.
    """
    schema = model.model_json_schema()
    inlined = _inline(schema, schema.get("$defs", {}), seen=())
    return {key: value for key, value in inlined.items() if key not in _PARAM_KEYS}


def _inline(node: Any, defs: Mapping[str, Any], *, seen: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_inline(item, defs, seen=seen) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith(_DEFS_PREFIX):
        name = ref.removeprefix(_DEFS_PREFIX)
        if name in seen:
            raise ValueError(f"{name} refers to itself; a recursive model cannot be inlined")
        siblings = {key: value for key, value in node.items() if key != "$ref"}
        return _inline({**defs[name], **siblings}, defs, seen=(*seen, name))
    return {key: _inline(value, defs, seen=seen) for key, value in node.items() if key != "$defs"}


def training_schema() -> dict[str, Any]:
    """The ``training`` param's schema: a `TrainingSpec`, frameworks from the registry."""
    schema = model_schema(TrainingSpec)
    framework = schema["properties"]["framework"]
    schema["properties"]["framework"] = {**framework, "enum": list(FRAMEWORKS)}
    return schema


def cluster_schema(purpose: str) -> dict[str, Any]:
    """A cluster param's schema: `ClusterCreate` fields, ``purpose`` fixed to ``purpose``.

    ``name`` may be left out (the operator derives one from the task) and
    ``request_id`` is not accepted (the operator derives it from the task try).
    """
    schema = model_schema(ClusterCreate)
    del schema["properties"]["request_id"]
    schema["properties"]["purpose"] = {"const": purpose, "type": "string"}
    schema["required"] = ["purpose"]
    return schema


def serving_schema() -> dict[str, Any]:
    """The ``serving`` param's schema: the `DeployRequest` fields of `SERVING_FIELDS`
    and a sample request for the endpoint check."""
    request = model_schema(DeployRequest)["properties"]
    properties = {name: request[name] for name in SERVING_FIELDS}
    properties["sample_request"] = {
        "type": "object",
        "required": ["instances"],
        "description": "A prediction request the endpoint must answer.",
    }
    return {
        "type": "object",
        "required": ["sample_request"],
        "additionalProperties": False,
        "properties": properties,
    }


def dag_params() -> dict[str, Param]:
    """Fresh `Param` objects (a DAG keeps and mutates its own) with the defaults above."""
    return {
        "training": Param(
            copy.deepcopy(DEFAULT_TRAINING),
            description="The training spec, as `python -m rayline.jobs.train --spec` takes it.",
            schema=training_schema(),
        ),
        "training_cluster": Param(
            {"purpose": "training", "ttl_seconds": 3600},
            description="The training cluster's request (Cluster Manager ClusterCreate "
            "fields); head, worker and worker_count default to what the training spec needs.",
            schema=cluster_schema("training"),
        ),
        "serving": Param(
            copy.deepcopy(DEFAULT_SERVING),
            description="Port, serving spec (replicas, batching), mode, labels, a sample "
            "request for the endpoint check.",
            schema=serving_schema(),
        ),
        "serving_cluster": Param(
            # 2 logical CPUs are Ray scheduling slots, not cores: the deploy job's
            # driver and one serving replica both fit.
            {
                "purpose": "serving",
                "head": {"cpus": 2},
                "worker_count": 0,
                "ttl_seconds": 7 * 86400,
            },
            description="The serving cluster's request (Cluster Manager ClusterCreate fields).",
            schema=cluster_schema("serving"),
        ),
    }
