"""Does a spec fit a cluster, and what cluster fits a spec.

Ray Train waits, without end, for resources a cluster will never have; this
check turns that hang into an error before training starts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence

from rayline.training.errors import InsufficientResourcesError
from rayline.training.spec import TrainingSpec

__all__ = ["check_capacity", "cluster_name_for", "placeable_workers"]


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
