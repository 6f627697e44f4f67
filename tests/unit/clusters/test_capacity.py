"""The sum of live clusters' resources against the backend's capacity."""

from __future__ import annotations

from rayline.clusters.backends.base import Capacity
from rayline.clusters.capacity import Demand, demand_of, shortfall, stored_demand
from rayline.clusters.schemas import ClusterCreate

HOST = Capacity(max_cpus=2, max_memory_mb=4096, max_gpus=0)


def test_a_clusters_demand_counts_the_head_and_every_worker() -> None:
    spec = ClusterCreate.model_validate(
        {
            "name": "t",
            "purpose": "training",
            "head": {"cpus": 2, "memory_mb": 512},
            "worker": {"cpus": 0.5, "memory_mb": 256},
            "worker_count": 3,
        }
    )
    assert demand_of(spec) == Demand(cpus=3.5, memory_mb=1280, gpus=0)


def test_stored_specs_are_summed_and_unreadable_ones_skipped() -> None:
    rows = [
        {"name": "a", "purpose": "training", "head": {"cpus": 2}},
        {"name": "b", "purpose": "serving", "head": {"cpus": 1}, "worker_count": 1},
        {"not": "a spec"},
    ]
    assert stored_demand(rows).cpus == 4


def test_a_request_that_fits_beside_the_live_clusters_passes() -> None:
    assert (
        shortfall(Demand(cpus=2), Demand(cpus=6), HOST, cpu_overcommit=4, backend="local") is None
    )


def test_cpus_beyond_what_is_left_are_refused_with_the_numbers() -> None:
    problem = shortfall(Demand(cpus=3), Demand(cpus=6), HOST, cpu_overcommit=4, backend="local")

    assert problem is not None
    assert "asks for 3 CPUs" in problem and "already hold 6 of the 8" in problem
    assert "delete clusters" in problem


def test_memory_is_summed_too() -> None:
    problem = shortfall(
        Demand(memory_mb=1024), Demand(memory_mb=3584), HOST, cpu_overcommit=4, backend="local"
    )
    assert problem is not None and "MiB of memory" in problem


def test_a_request_too_big_on_its_own_is_left_to_the_provisioner() -> None:
    # capacity_problem fails it as unsatisfiable, which no deletion can fix.
    assert shortfall(Demand(cpus=9), Demand(), HOST, cpu_overcommit=4, backend="local") is None


def test_unknown_limits_refuse_nothing() -> None:
    assert (
        shortfall(Demand(cpus=1e6), Demand(cpus=1e6), Capacity(), cpu_overcommit=1, backend="k")
        is None
    )
