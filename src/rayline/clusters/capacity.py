"""What the live clusters hold together, against what the backend can give.

Every live cluster (pooled ones included) keeps its CPUs, memory and GPUs while it
lives, so a new one is accepted only while the sum of all of them, itself included,
fits the backend's capacity (CPUs with the overcommit factor). One cluster too big
on its own is the provisioner's `capacity_problem` (FAILED, unsatisfiable); this
refuses one that would fit alone but not beside the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rayline.clusters.backends.base import Capacity
from rayline.clusters.schemas import ClusterCreate, ResourceSpec
from rayline.metadata.enums import ClusterState
from rayline.metadata.models import Cluster

__all__ = ["Demand", "demand_of", "live_demand", "shortfall", "stored_demand"]


@dataclass(frozen=True)
class Demand:
    """Resources asked by one or more clusters."""

    cpus: float = 0.0
    memory_mb: int = 0
    gpus: int = 0

    def __add__(self, other: Demand) -> Demand:
        return Demand(
            self.cpus + other.cpus, self.memory_mb + other.memory_mb, self.gpus + other.gpus
        )


def demand_of(spec: ClusterCreate) -> Demand:
    """The resources of every node of ``spec`` together."""
    nodes: list[ResourceSpec] = [spec.head] + [spec.worker] * spec.worker_count
    return Demand(
        cpus=sum(n.cpus for n in nodes),
        memory_mb=sum(n.memory_mb or 0 for n in nodes),
        gpus=sum(n.gpus for n in nodes),
    )


def stored_demand(specs: Iterable[Mapping[str, Any]]) -> Demand:
    """The sum over clusters' stored specs (``Cluster.spec``); unreadable ones count as 0."""
    total = Demand()
    for raw in specs:
        try:
            total += demand_of(ClusterCreate.model_validate(dict(raw)))
        except ValueError:  # a row written by an older version: it cannot be re-checked
            continue
    return total


def live_demand(session: Session, live_states: Iterable[ClusterState]) -> Demand:
    """What the clusters in ``live_states`` hold together."""
    specs = session.scalars(select(Cluster.spec).where(Cluster.state.in_(list(live_states))))
    return stored_demand(specs)


def shortfall(
    asked: Demand, in_use: Demand, capacity: Capacity, *, cpu_overcommit: float, backend: str
) -> str | None:
    """Why ``asked`` does not fit beside ``in_use``, or None when it does.

    Only a request that would fit on its own is judged here (else None: the
    provisioner fails it with the reason).
    """
    checks: list[tuple[str, float, float, float | None, str]] = [
        ("CPUs", asked.cpus, in_use.cpus, _times(capacity.max_cpus, cpu_overcommit), "g"),
        ("MiB of memory", asked.memory_mb, in_use.memory_mb, capacity.max_memory_mb, "d"),
        ("GPUs", asked.gpus, in_use.gpus, capacity.max_gpus, "d"),
    ]
    for what, wanted, used, most, fmt in checks:
        if most is None or wanted > most or used + wanted <= most:
            continue
        return (
            f"the request asks for {wanted:{fmt}} {what} but the live clusters already hold "
            f"{used:{fmt}} of the {most:{fmt}} backend {backend} can give; delete clusters "
            "you no longer need, or ask for fewer resources"
        )
    return None


def _times(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor
