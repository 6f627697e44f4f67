"""Capacity checks, the training cluster's shape, and cluster naming."""

from __future__ import annotations

import pytest

from rayline.training.errors import InsufficientResourcesError
from rayline.training.resources import (
    MAX_WORKER_NODES,
    ClusterShape,
    check_capacity,
    choose_runtime,
    cluster_name_for,
    placeable_workers,
    training_cluster_shape,
)
from rayline.training.spec import load_spec


def make(**fields: object):  # type: ignore[no-untyped-def]
    base = {"spec_version": 1, "name": "Iris_Model.v2", "dataset": "sklearn:iris",
            "target": "target", "task": "classification", "framework": "xgboost"}  # fmt: skip
    return load_spec({**base, **fields})


def test_placeable_workers_counts_per_node() -> None:
    nodes = [{"CPU": 1.0}, {"CPU": 1.0}, {"CPU": 3.0, "GPU": 1.0}]
    assert placeable_workers(nodes, cpus=1, gpus=0) == 5
    assert placeable_workers(nodes, cpus=2, gpus=0) == 1
    assert placeable_workers(nodes, cpus=1, gpus=1) == 1
    assert placeable_workers(nodes, cpus=0.5, gpus=0) == 10


def test_check_capacity() -> None:
    nodes = [{"CPU": 1.0}, {"CPU": 1.0}, {"CPU": 1.0}]
    check_capacity(make(workers=3), nodes)
    with pytest.raises(InsufficientResourcesError) as caught:
        check_capacity(make(workers=4), nodes)
    message = str(caught.value)
    assert "4 worker(s) x 1 CPU" in message and "only 3" in message and "3 node(s)" in message
    with pytest.raises(InsufficientResourcesError, match="GPU"):
        check_capacity(make(workers=1, gpus_per_worker=1), nodes)


def test_cluster_name_is_a_dns_label() -> None:
    assert cluster_name_for(make()) == "train-iris-model-v2"
    assert len(cluster_name_for(make(name="x" * 128))) == 63


def _nodes(shape: ClusterShape) -> list[dict[str, float]]:
    worker = {"CPU": shape.worker_cpus, "GPU": shape.worker_gpus}
    return [{"CPU": shape.head_cpus, "GPU": 0}] + [worker] * shape.worker_count


@pytest.mark.parametrize(
    "fields",
    [
        {"workers": 4},
        {"workers": 4, "cpus_per_worker": 2.5},
        {"workers": 2, "gpus_per_worker": 0.5},
        {"workers": 1, "gpus_per_worker": 1},
        {"workers": 200, "gpus_per_worker": 0.3},
        {"workers": 256, "cpus_per_worker": 0.5},
    ],
)
def test_the_training_cluster_fits_every_worker(fields: dict[str, float]) -> None:
    spec = make(**fields)
    shape = training_cluster_shape(spec)
    assert choose_runtime(spec) == "ray_train"
    assert shape.head_cpus == 1  # the driver's
    assert 1 <= shape.worker_count <= MAX_WORKER_NODES
    check_capacity(spec, _nodes(shape))


def test_four_workers_get_four_worker_nodes() -> None:
    assert training_cluster_shape(make(workers=4, cpus_per_worker=2)) == ClusterShape(
        head_cpus=1, worker_count=4, worker_cpus=2, worker_gpus=0
    )


def test_one_cpu_worker_trains_on_the_head() -> None:
    spec = make(workers=1, cpus_per_worker=3)
    assert choose_runtime(spec) == "in_process"
    shape = training_cluster_shape(spec)
    assert shape == ClusterShape(head_cpus=4)  # the driver's CPU and the worker's
    assert shape.request_fields() == {"head": {"cpus": 4}, "worker_count": 0}


def test_max_worker_nodes_is_the_cluster_managers_limit() -> None:
    from pydantic import ValidationError

    from rayline.clusters.schemas import ClusterCreate

    fields = {"name": "big", "purpose": "training"}
    ClusterCreate.model_validate({**fields, "worker_count": MAX_WORKER_NODES})
    with pytest.raises(ValidationError, match="worker_count"):
        ClusterCreate.model_validate({**fields, "worker_count": MAX_WORKER_NODES + 1})
