"""`/v1/pools`: the warm pools, and draining them before a shutdown."""

from __future__ import annotations

from fastapi import APIRouter

from rayline.clusters.api.deps import Authorized, RuntimeDep
from rayline.clusters.schemas import PoolsDrained

router = APIRouter(prefix="/v1/pools", tags=["pools"], dependencies=[Authorized])


@router.post("/drain", response_model=PoolsDrained)
def drain_pools(runtime: RuntimeDep) -> PoolsDrained:
    """Stop refilling on this replica and tear down every fresh pooled cluster.

    `rayline down` calls it first, so no spare starts while it deletes the rest.
    """
    return PoolsDrained(drained=runtime.pools.drain(why="drain requested", every_owner=True))
