"""The `rayline_train_and_serve` DAG's parameters: defaults and JSON schemas.

Airflow validates a run's ``conf`` against these schemas before any task runs,
so a typo in a spec fails the trigger, not a task twenty minutes in. They
mirror `rayline.training.spec.TrainingSpec` and
`rayline.clusters.schemas.ClusterCreate`, which still validate on their side.
"""

from __future__ import annotations

import copy
from typing import Any

from airflow.sdk import Param

__all__ = ["DEFAULT_SERVING", "DEFAULT_TRAINING", "dag_params"]

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

_NAME = r"^[A-Za-z0-9][-A-Za-z0-9_.]{0,127}$"

_TRAINING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["spec_version", "name", "dataset", "target", "task", "framework"],
    "additionalProperties": False,
    "properties": {
        "spec_version": {"const": 1},
        "name": {"type": "string", "pattern": _NAME},
        "dataset": {"type": "string", "pattern": r"^(s3://|file://|sklearn:)"},
        "dataset_format": {"enum": ["csv", "parquet", None]},
        "target": {"type": "string", "minLength": 1, "maxLength": 256},
        "task": {"enum": ["classification", "regression"]},
        "framework": {"enum": ["xgboost", "sklearn", "torch"]},
        "hyperparameters": {"type": "object"},
        "workers": {"type": "integer", "minimum": 1, "maximum": 256},
        "cpus_per_worker": {"type": "number", "exclusiveMinimum": 0, "maximum": 1024},
        "gpus_per_worker": {"type": "number", "minimum": 0, "maximum": 64},
        "validation_split": {"type": "number", "exclusiveMinimum": 0, "maximum": 0.5},
        "seed": {"type": "integer", "minimum": 0, "maximum": 2**32 - 1},
        "max_failures": {"type": "integer", "minimum": 0, "maximum": 100},
        "checkpoint_every": {"type": "integer", "minimum": 1, "maximum": 100_000},
    },
}

_RESOURCES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "cpus": {"type": "number", "minimum": 0, "maximum": 1024},
        "memory_mb": {"type": ["integer", "null"], "minimum": 64},
        "gpus": {"type": "integer", "minimum": 0, "maximum": 64},
        "custom": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0}},
    },
}


def _cluster_schema(purpose: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["purpose"],
        "additionalProperties": False,
        "properties": {
            "purpose": {"const": purpose},
            "head": _RESOURCES_SCHEMA,
            "worker": _RESOURCES_SCHEMA,
            "worker_count": {"type": "integer", "minimum": 0, "maximum": 64},
            "runtime_env": {"type": "object"},
            "ttl_seconds": {"type": "integer", "minimum": 1},
            "idle_timeout_seconds": {"type": ["integer", "null"], "minimum": 1},
            "labels": {
                "type": "object",
                "additionalProperties": {"type": "string", "maxLength": 63},
            },
        },
    }


_SERVING_SPEC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "num_replicas": {"type": "integer", "minimum": 1, "maximum": 64},
        "min_replicas": {"type": ["integer", "null"], "minimum": 0, "maximum": 64},
        "max_replicas": {"type": ["integer", "null"], "minimum": 1, "maximum": 64},
        "target_ongoing_requests": {"type": "number", "exclusiveMinimum": 0},
        "max_ongoing_requests": {"type": "integer", "minimum": 1},
        "max_batch_size": {"type": "integer", "minimum": 1},
        "batch_wait_timeout_s": {"type": "number", "minimum": 0, "maximum": 10},
        "replica_cpus": {"type": "number", "minimum": 0},
        "ray_cpus": {"type": "integer", "minimum": 1},
        "graceful_shutdown_timeout_s": {"type": "number", "minimum": 0, "maximum": 3600},
        "max_body_bytes": {"type": "integer", "minimum": 1024, "maximum": 64 * 1024 * 1024},
        "max_rows": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
        "high_throughput": {"type": "boolean"},
        "access_log": {"type": "boolean"},
    },
}

_SERVING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["sample_request"],
    "additionalProperties": False,
    "properties": {
        "port": {"type": ["integer", "null"], "minimum": 1024, "maximum": 65535},
        "spec": _SERVING_SPEC_SCHEMA,
        "mode": {"enum": ["docker", "ray", None]},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "sample_request": {"type": "object", "required": ["instances"]},
    },
}


# Clusters get 2 logical CPUs: Ray scheduling slots, not cores (the local backend
# may promise more than the machine has), so a job's driver and one training worker
# or serving replica both fit.


def dag_params() -> dict[str, Param]:
    """Fresh `Param` objects (a DAG keeps and mutates its own) with the defaults above."""
    return {
        "training": Param(
            copy.deepcopy(DEFAULT_TRAINING),
            description="The training spec, as `python -m rayline.jobs.train --spec` takes it.",
            schema=_TRAINING_SCHEMA,
        ),
        "training_cluster": Param(
            {"purpose": "training", "head": {"cpus": 2}, "worker_count": 0, "ttl_seconds": 3600},
            description="The training cluster's request (Cluster Manager ClusterCreate fields).",
            schema=_cluster_schema("training"),
        ),
        "serving": Param(
            copy.deepcopy(DEFAULT_SERVING),
            description="Port, serving spec (replicas, batching), mode, labels, a sample "
            "request for the endpoint check.",
            schema=_SERVING_SCHEMA,
        ),
        "serving_cluster": Param(
            {
                "purpose": "serving",
                "head": {"cpus": 2},
                "worker_count": 0,
                "ttl_seconds": 7 * 86400,
            },
            description="The serving cluster's request (Cluster Manager ClusterCreate fields).",
            schema=_cluster_schema("serving"),
        ),
    }
