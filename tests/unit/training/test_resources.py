"""Capacity checks and cluster naming."""

from __future__ import annotations

import pytest

from rayline.training.errors import InsufficientResourcesError
from rayline.training.resources import check_capacity, cluster_name_for, placeable_workers
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
