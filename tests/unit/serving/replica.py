"""The real model server app of `rayline.serving.app`, run in-process on a real model.

A replica's class is built as Ray Serve builds it (its FastAPI routes, its
``@serve.batch`` queue) and given the replica context Serve would give it, so
tests can drive the app over ASGI without starting Ray.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from fastapi import FastAPI
from ray.serve import context
from ray.serve._private.common import DeploymentID, ReplicaID
from ray.serve._private.config import DeploymentConfig
from ray.serve.schema import ReplicaRank

from rayline.serving import app as serving_app
from tests.unit.serving.model_factory import make_iris_model

__all__ = ["SERVED", "Replica", "replica_app"]

SERVED = {"name": "iris", "version": 1, "version_id": "v-1", "sha256": "0" * 64}


class Replica(NamedTuple):
    """The ASGI app and the replica object behind its routes."""

    app: FastAPI
    server: Any


@contextmanager
def replica_app(workdir: Path, **spec: Any) -> Iterator[Replica]:
    """The model server's ASGI app, serving an iris model trained in ``workdir``.

    Args:
        workdir: Where the model version is written.
        spec: `ServingSpec` fields (limits, batching).
    """
    model = make_iris_model(workdir / "iris")
    deployment: Any = serving_app.ModelServer  # serve.deployment made it a Deployment
    ingress = deployment.func_or_class  # Serve's ASGI wrapper of our class
    replica = object.__new__(ingress)
    context._set_internal_replica_context(
        replica_id=ReplicaID("test-replica", DeploymentID("model")),
        servable_object=replica,
        _deployment_config=DeploymentConfig(max_ongoing_requests=1000),
        rank=ReplicaRank(rank=0, node_rank=0, local_rank=0),
        world_size=1,
    )
    _forget_batch_queue()
    try:
        ingress.__mro__[1].__init__(  # our own __init__; Serve's wrapper adds its ASGI glue
            replica,
            source={"dir": str(model.directory)},
            served=SERVED,
            spec=spec,
            deployment_id="d-test",
        )
        yield Replica(serving_app.api, replica)
    finally:
        context._INTERNAL_REPLICA_CONTEXT = None  # type: ignore[assignment]
        _forget_batch_queue()


def _forget_batch_queue() -> None:
    # ``@serve.batch`` keeps one queue per decorated method, bound to the event loop
    # of its first call; a replica has one loop for life, each test client its own.
    batcher: Any = serving_app.ModelServer.func_or_class._predict_rows  # type: ignore[attr-defined]
    batcher.set_max_batch_size.__self__._queue = None
