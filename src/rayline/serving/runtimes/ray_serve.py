"""Serve a model straight on the serving Ray cluster, without Docker.

The deploy job runs on that cluster, so it connects as a driver and deploys the
same Serve app as the containers run, one Serve *application* per deployment
(named after the deployment, under the route prefix ``/<deployment id>``).
All applications of a cluster share its one Serve HTTP proxy and so its port:
the first deployment picks it, later ones reuse it.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import httpx

from rayline.metadata import Deployment, DeploymentMode
from rayline.serving.errors import DeploymentFailedError, PortInUseError
from rayline.serving.metrics_dirs import new_metrics_dir, remove_metrics_dirs
from rayline.serving.net import ephemeral_port, port_free
from rayline.serving.runtimes.base import Liveness, ServingRuntime, Started, StartRequest
from rayline.serving.runtimes.docker import endpoint_host

__all__ = ["RayServeRuntime"]

log = logging.getLogger(__name__)

_HEALTH_TRIES = 3


class RayServeRuntime(ServingRuntime):
    """A Serve application per deployment on the Ray cluster this process drives."""

    mode = DeploymentMode.RAY

    def start(self, request: StartRequest) -> Started:
        """Start Serve on the cluster if needed, then deploy the app and wait for it.

        The replicas' metrics directory is made here and removed again if the
        start fails; :meth:`stop` removes it otherwise.
        """
        self._connect()
        port = self._serve_port(request)
        directory = new_metrics_dir(request.deployment_id)
        try:
            self._run_app(request, port, directory)
        except BaseException:
            remove_metrics_dirs(request.deployment_id)
            raise
        return Started(
            endpoint_url=f"http://{endpoint_host(request.host)}:{port}/{request.deployment_id}",
            port=port,
        )

    def _run_app(self, request: StartRequest, port: int, metrics_dir: str) -> None:
        from ray import serve

        from rayline.serving.app import build_app

        app = build_app(
            # Replicas may run on any node: each fetches and verifies the model itself.
            source={"store_uri": request.store_uri},
            served=request.served,
            spec=request.spec,
            deployment_id=request.deployment_id,
            metrics_dir=metrics_dir,
        )
        request.progress(f"deploying Serve application {request.deployment_id} on port {port}")
        try:
            serve.run(app, name=request.deployment_id, route_prefix=f"/{request.deployment_id}")
        except RuntimeError as err:
            self._delete(request.deployment_id)
            raise DeploymentFailedError(
                f"Ray Serve could not start {request.served.name} version "
                f"{request.served.version}: {err}"
            ) from err

    def _serve_port(self, request: StartRequest) -> int:
        from ray import serve
        from ray.serve.context import _get_global_client

        client = _get_global_client(raise_if_no_controller_running=False)
        if client is None:
            port = request.port if request.port is not None else ephemeral_port(request.host)
            if not port_free(request.host, port):
                raise PortInUseError(request.host, port)
            serve.start(
                proxy_location="HeadOnly", http_options={"host": request.host, "port": port}
            )
            client = _get_global_client()
        assert client is not None  # serve.start just started the controller
        existing: int = client.http_config.port
        if request.port is not None and request.port != existing:
            raise DeploymentFailedError(
                f"Ray Serve on this cluster already listens on port {existing}, not "
                f"{request.port}; every model served by one cluster shares that port: deploy "
                f"with --port {existing} or without --port"
            )
        return existing

    def liveness(self, deployment: Deployment) -> Liveness:
        """Alive while the application answers ``/healthz`` (tried a few times)."""
        url = f"{deployment.endpoint_url}/healthz"
        reason = ""
        for _ in range(_HEALTH_TRIES):
            try:
                response = httpx.get(url, timeout=5)
            except httpx.HTTPError as err:
                reason = f"{url} does not answer ({type(err).__name__})"
                continue
            if response.status_code == 200:
                return Liveness(True)
            reason = f"{url} answered HTTP {response.status_code}"
        return Liveness(False, reason)

    def startup_failure(self, deployment: Deployment) -> str | None:
        """The application's status when Serve gave up on it."""
        from ray import serve

        status = serve.status().applications.get(deployment.id)
        if status is None:
            return f"Serve has no application {deployment.id}"
        if status.status.value in ("DEPLOY_FAILED", "UNHEALTHY", "DELETING"):
            return f"Serve application {deployment.id} is {status.status}: {status.message}"
        return None

    def logs(self, deployment: Deployment, lines: int = 40) -> str:
        """Serve keeps replica logs on the cluster's nodes; point there."""
        return "see the replica logs in the Ray session's logs/serve directory on the cluster"

    def stop(self, deployment: Deployment, *, drain_seconds: float) -> None:
        """Delete the application, then remove its replicas' metrics directory.

        Serve lets the replicas finish their in-flight requests before they exit.
        """
        self._connect()
        self._delete(deployment.id)
        remove_metrics_dirs(deployment.id)

    def _delete(self, name: str) -> None:
        from ray import serve

        if name in serve.status().applications:
            serve.delete(name)

    def _connect(self) -> None:
        import ray

        if not ray.is_initialized():
            address: Any = os.environ.get("RAY_ADDRESS", "auto")
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
