"""Does a spec fit a cluster, and what cluster fits a spec.

Ray Train waits, without end, for resources a cluster will never have;
:func:`check_capacity` turns that hang into an error before training starts.
:func:`training_cluster_shape` is the one answer to "what cluster does this
spec need", for `rayline train` and the Airflow DAG alike.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rayline.training.errors import InsufficientResourcesError
from rayline.training.spec import TrainingSpec
from rayline.training.trained import Runtime

__all__ = [
    "DRIVER_CPUS",
    "MAX_WORKER_NODES",
    "ClusterShape",
    "check_capacity",
    "choose_runtime",
    "cluster_name_for",
    "placeable_workers",
    "training_cluster_shape",
]

#: Logical CPUs the head keeps for the job's driver (and Ray Train's Ray Data reads).
DRIVER_CPUS = 1.0
#: The most worker nodes one cluster request may ask for (`ClusterCreate.worker_count`).
MAX_WORKER_NODES = 64


def choose_runtime(spec: TrainingSpec) -> Runtime:
    """``in_process`` for one CPU worker (every sklearn spec), else ``ray_train``.

    A worker that asks for GPUs stays on Ray Train even alone: Ray places it on
    a node that has them, while the job's driver runs wherever Ray started it.
    """
    return "in_process" if spec.workers == 1 and spec.gpus_per_worker == 0 else "ray_train"


@dataclass(frozen=True)
class ClusterShape:
    """The nodes of a training cluster: a head, and ``worker_count`` alike worker nodes.

    Attributes:
        head_cpus: Logical CPUs of the head node.
        worker_count: Worker nodes.
        worker_cpus: Logical CPUs of each worker node.
        worker_gpus: GPUs of each worker node.
    """

    head_cpus: float
    worker_count: int = 0
    worker_cpus: float = 1
    worker_gpus: int = 0

    def request_fields(self) -> dict[str, Any]:
        """This shape as Cluster Manager request fields: ``head``, ``worker``, ``worker_count``."""
        fields: dict[str, Any] = {
            "head": {"cpus": self.head_cpus},
            "worker_count": self.worker_count,
        }
        if self.worker_count:
            fields["worker"] = {"cpus": self.worker_cpus, "gpus": self.worker_gpus}
        return fields


def training_cluster_shape(spec: TrainingSpec) -> ClusterShape:
    """The smallest cluster on which ``spec`` trains without waiting for resources.

    One CPU worker trains in the job's driver (:func:`choose_runtime`): the head
    gets the driver's CPU plus the worker's, and there are no worker nodes (with
    the defaults, the shape of the Cluster Manager's default warm training pool).
    Ray Train runs keep :data:`DRIVER_CPUS` on the head and put the training
    workers on worker nodes, one per node up to :data:`MAX_WORKER_NODES` nodes,
    evenly packed beyond that, so :func:`check_capacity` passes on the cluster.

    Example:
        >>> spec = TrainingSpec(spec_version=1, name="m", dataset="sklearn:iris",
        ...     target="target", task="classification", framework="xgboost", workers=4)
        >>> training_cluster_shape(spec)
        ClusterShape(head_cpus=1.0, worker_count=4, worker_cpus=1.0, worker_gpus=0)
    """
    if choose_runtime(spec) == "in_process":
        return ClusterShape(head_cpus=DRIVER_CPUS + spec.cpus_per_worker)
    nodes = min(spec.workers, MAX_WORKER_NODES)
    per_node = math.ceil(spec.workers / nodes)
    return ClusterShape(
        head_cpus=DRIVER_CPUS,
        worker_count=nodes,
        worker_cpus=float(per_node * spec.cpus_per_worker),
        worker_gpus=math.ceil(per_node * spec.gpus_per_worker - 1e-9),
    )


def placeable_workers(nodes: Iterable[Mapping[str, float]], *, cpus: float, gpus: float) -> int:
    """How many workers needing ``cpus`` CPUs and ``gpus`` GPUs fit on these nodes.

    Args:
        nodes: Each alive node's total resources (``{"CPU": 2, "GPU": 0, ...}``).
        cpus: CPUs per worker (> 0).
        gpus: GPUs per worker.
    """
    total = 0
    for node in nodes:
        fits = math.floor(node.get("CPU", 0) / cpus + 1e-9)
        if gpus > 0:
            fits = min(fits, math.floor(node.get("GPU", 0) / gpus + 1e-9))
        total += max(0, fits)
    return total


def check_capacity(spec: TrainingSpec, nodes: Sequence[Mapping[str, float]]) -> None:
    """Raise unless the cluster can place every worker the spec asks for.

    Raises:
        InsufficientResourcesError: Naming what was asked, what the cluster has,
            and how to fix it.
    """
    fits = placeable_workers(nodes, cpus=spec.cpus_per_worker, gpus=spec.gpus_per_worker)
    if fits >= spec.workers:
        return
    cpus = sum(n.get("CPU", 0) for n in nodes)
    gpus = sum(n.get("GPU", 0) for n in nodes)
    asked = f"{spec.workers} worker(s) x {spec.cpus_per_worker:g} CPU"
    if spec.gpus_per_worker:
        asked += f" + {spec.gpus_per_worker:g} GPU"
    raise InsufficientResourcesError(
        f"spec {spec.name!r} asks for {asked}, but the cluster ({len(nodes)} node(s), "
        f"{cpus:g} CPU, {gpus:g} GPU in all) can place only {fits}; lower `workers` or the "
        "per-worker resources, or train on a bigger cluster"
    )


def cluster_name_for(spec: TrainingSpec) -> str:
    """A DNS-label cluster name for a spec's training cluster, e.g. ``train-iris-xgb``."""
    slug = re.sub(r"[^a-z0-9-]+", "-", spec.name.lower()).strip("-")
    return f"train-{slug}"[:63].rstrip("-")
