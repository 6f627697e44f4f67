"""The Ray Serve application that serves one model version over HTTP.

Routes (``NAME`` is the model name; ``/versions/V`` may be added after it)::

    POST /v1/models/NAME:predict   {"instances": [...]} or {"inputs": {...}}
                                   -> {"predictions": [...], "model": NAME, "version": V}
    GET  /v1/models/NAME           version, signature, metrics
    GET  /healthz                  200 once the model is loaded
    GET  /metrics                  Prometheus text format, all replicas summed

Requests are validated against the model's input signature before they reach
the model; rows of concurrent requests are predicted together with
``@serve.batch`` (dynamic batching). The same app runs inside a model container
and straight on a serving Ray cluster.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.responses import Response
from ray import serve
from ray.serve import Application
from starlette.concurrency import run_in_threadpool

from rayline.private_dirs import ensure_private_dir
from rayline.serving import metrics
from rayline.serving.errors import InvalidRequestError
from rayline.serving.inputs import parse_body, to_matrix
from rayline.serving.model import ServedModel, input_schema, load_predictor
from rayline.serving.spec import ServingSpec

__all__ = ["ModelServer", "api", "build_app"]

log = logging.getLogger(__name__)

api = FastAPI(title="Rayline model server", docs_url=None, redoc_url=None, openapi_url=None)
_JSON = "application/json"


def _rows_in(matrices: list[np.ndarray]) -> int:
    return sum(len(m) for m in matrices)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _answer(status: int, doc: dict[str, Any]) -> Response:
    body = json.dumps(doc, default=_json_default, separators=(",", ":"))
    return Response(content=body, status_code=status, media_type=_JSON)


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed ``limit``."""
    declared = request.headers.get("content-length")
    too_big = (
        f"the request body is larger than the limit of {limit} bytes; send fewer rows per request"
    )
    if declared is not None:
        if not declared.isdigit():
            raise InvalidRequestError(f"Content-Length {declared!r} is not a number", status=400)
        if int(declared) > limit:
            raise InvalidRequestError(too_big, status=413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise InvalidRequestError(too_big, status=413)
        chunks.append(chunk)
    return b"".join(chunks)


@serve.deployment(name="model")
@serve.ingress(api)
class ModelServer:
    """One replica: the loaded model behind the HTTP routes.

    Args:
        source: ``{"dir": PATH}`` of a verified model directory (containers), or
            ``{"store_uri": ..., "version_id": ...}`` to fetch and verify it here
            (Serve on a Ray cluster, where replicas may run on any node).
        served: :class:`ServedModel` fields.
        spec: :class:`ServingSpec` fields.
        deployment_id: The deployment this replica belongs to.
    """

    def __init__(
        self,
        source: dict[str, str],
        served: dict[str, Any],
        spec: dict[str, Any],
        deployment_id: str,
    ) -> None:
        self._served = ServedModel.model_validate(served)
        self._spec = ServingSpec.model_validate(spec)
        self._deployment_id = deployment_id
        self._predictor = load_predictor(self._model_dir(source))
        self._schema = input_schema(self._predictor)
        self._columns = list(self._schema.names)
        self._labels = {"model": self._served.name, "version": str(self._served.version)}
        # serve.batch's decorator types hide the setters of the batch queue.
        batcher: Any = self._predict_rows
        batcher.set_max_batch_size(self._spec.max_batch_size)
        batcher.set_batch_wait_timeout_s(self._spec.batch_wait_timeout_s)
        directory = os.environ.get(metrics.MULTIPROC_ENV)
        if directory:  # made on the deploying node; replicas elsewhere make their own
            ensure_private_dir(directory)

    def _model_dir(self, source: dict[str, str]) -> Path:
        if "dir" in source:
            return Path(source["dir"])
        from rayline.storage import fetch_version, open_store

        self._tmp = tempfile.TemporaryDirectory(prefix="rayline-serve-")
        target = Path(self._tmp.name, "model")
        fetch_version(
            open_store(source["store_uri"]),
            self._served.name,
            self._served.version_id,
            target,
            expected_manifest_sha256=self._served.sha256,
        )
        return target

    # -- batching ----------------------------------------------------------------

    @serve.batch(max_batch_size=64, batch_wait_timeout_s=0.002, batch_size_fn=_rows_in)
    async def _predict_rows(self, matrices: list[np.ndarray]) -> list[list[Any]]:
        return await run_in_threadpool(self._run_model, matrices)

    def _run_model(self, matrices: list[np.ndarray]) -> list[list[Any]]:
        stacked = matrices[0] if len(matrices) == 1 else np.concatenate(matrices)
        metrics.BATCH_SIZE.labels(**self._labels).observe(len(stacked))
        predictions = self._predictor.predict(pd.DataFrame(stacked, columns=self._columns))
        out: list[list[Any]] = []
        start = 0
        for matrix in matrices:
            out.append(list(predictions[start : start + len(matrix)]))
            start += len(matrix)
        return out

    # -- routes ------------------------------------------------------------------

    @api.post("/v1/models/{name}:predict")
    async def predict(self, name: str, request: Request) -> Response:
        """Predict the rows of one request."""
        return await self._predict(name, None, request)

    @api.post("/v1/models/{name}/versions/{version}:predict")
    async def predict_version(self, name: str, version: str, request: Request) -> Response:
        """Predict with an explicit version, which must be the one served here."""
        return await self._predict(name, version, request)

    @api.get("/v1/models/{name}")
    async def describe(self, name: str) -> Response:
        """The served version, its input signature and training metrics."""
        return self._describe(name, None)

    @api.get("/v1/models/{name}/versions/{version}")
    async def describe_version(self, name: str, version: str) -> Response:
        """As ``describe``, for an explicit version."""
        return self._describe(name, version)

    @api.get("/healthz")
    async def healthz(self) -> Response:
        """200 once this replica has loaded the model."""
        return _answer(
            200,
            {
                "status": "ok",
                "model": self._served.name,
                "version": self._served.version,
                "deployment_id": self._deployment_id,
            },
        )

    @api.get("/metrics")
    async def prometheus(self) -> Response:
        """Prometheus metrics of every replica of this deployment."""
        return Response(content=metrics.render(), media_type=metrics.CONTENT_TYPE_LATEST)

    # -- helpers -----------------------------------------------------------------

    async def _predict(self, name: str, version: str | None, request: Request) -> Response:
        started = time.perf_counter()
        try:
            self._check_target(name, version)
            body = await _read_body(request, self._spec.max_body_bytes)
            # Parsing, predicting and encoding run in worker threads: a huge request
            # must not stall the event loop that every other request of this replica needs.
            matrix = await run_in_threadpool(self._matrix, body)
            if len(matrix) >= self._spec.max_batch_size:
                predictions = (await run_in_threadpool(self._run_model, [matrix]))[0]
            else:
                predictions = await self._predict_rows(matrix)
            doc = {
                "predictions": predictions,
                "model": self._served.name,
                "version": self._served.version,
            }
            answer = await run_in_threadpool(_answer, 200, doc)
        except InvalidRequestError as err:
            self._record(err.status, started)
            return _answer(err.status, {"detail": str(err)})
        except Exception:
            self._record(500, started)
            log.exception("prediction failed on %s", self._served.name)
            raise
        self._record(200, started)
        return answer

    def _matrix(self, body: bytes) -> np.ndarray:
        return to_matrix(parse_body(body), self._schema, max_rows=self._spec.max_rows)

    def _describe(self, name: str, version: str | None) -> Response:
        try:
            self._check_target(name, version)
        except InvalidRequestError as err:
            return _answer(err.status, {"detail": str(err)})
        served = self._served
        return _answer(
            200,
            {
                "name": served.name,
                "version": served.version,
                "version_id": served.version_id,
                "sha256": served.sha256,
                "framework": self._predictor.framework,
                "signature": self._predictor.signature.to_dict(),
                "metrics": self._predictor.metrics,
                "deployment_id": self._deployment_id,
                "batching": {
                    "max_batch_size": self._spec.max_batch_size,
                    "batch_wait_timeout_s": self._spec.batch_wait_timeout_s,
                },
            },
        )

    def _check_target(self, name: str, version: str | None) -> None:
        served = self._served
        if name != served.name:
            raise InvalidRequestError(
                f"model {name!r} is not served here; this endpoint serves {served.name!r} "
                f"version {served.version} (find others with `rayline deployments list`)",
                status=404,
            )
        if version is not None and version != str(served.version):
            raise InvalidRequestError(
                f"version {version!r} of {served.name!r} is not served here; this endpoint "
                f"serves version {served.version}",
                status=404,
            )

    def _record(self, status: int, started: float) -> None:
        metrics.REQUESTS.labels(**self._labels, code=str(status)).inc()
        if status >= 400:
            metrics.ERRORS.labels(**self._labels, code=str(status)).inc()
        metrics.LATENCY.labels(**self._labels).observe(time.perf_counter() - started)


def build_app(
    *,
    source: dict[str, str],
    served: ServedModel,
    spec: ServingSpec,
    deployment_id: str,
    metrics_dir: str,
) -> Application:
    """The Serve application of one deployment, ready for ``serve.run``.

    Args:
        source: Where replicas find the model (see :class:`ModelServer`).
        served: The model version.
        spec: Replicas, autoscaling, batching and limits.
        deployment_id: The deployment the replicas serve (in ``/healthz``).
        metrics_dir: The replicas' multi-process metrics directory, made by the
            caller with :func:`~rayline.serving.metrics_dirs.new_metrics_dir`,
            which also removes it when the deployment stops.
    """
    options = spec.deployment_options()
    options["ray_actor_options"]["runtime_env"] = {"env_vars": {metrics.MULTIPROC_ENV: metrics_dir}}
    deployment: Any = ModelServer  # serve.deployment turned the class into a Deployment
    app: Application = deployment.options(**options).bind(
        source=source,
        served=served.model_dump(),
        spec=spec.model_dump(),
        deployment_id=deployment_id,
    )
    return app
