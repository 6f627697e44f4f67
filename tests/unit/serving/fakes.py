"""Stand-ins for the unit tests of the deployer: a runtime and service discovery.

The runtime really serves ``/healthz`` over HTTP on loopback (a tiny
``http.server`` thread), so the deployer's health wait runs unchanged.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from rayline.clusters.errors import ClusterNotFoundError, NotFoundError
from rayline.clusters.schemas import ServiceCreate, ServicePublic, ServicesPublic
from rayline.metadata import Deployment, DeploymentMode
from rayline.serving.errors import DeploymentFailedError
from rayline.serving.runtimes import Liveness, ServingRuntime, Started, StartRequest

__all__ = ["FakeManager", "FakeRuntime"]


def _health_server(deployment_id: str) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"status": "ok", "deployment_id": deployment_id}).encode()
            self.send_response(200 if self.path == "/healthz" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@dataclass
class FakeRuntime(ServingRuntime):
    """Serves ``/healthz`` per deployment; can be told to fail or never get healthy."""

    fail_start: bool = False
    never_healthy: bool = False
    servers: dict[str, ThreadingHTTPServer] = field(default_factory=dict)
    started: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    dead: set[str] = field(default_factory=set)
    events: list[str] = field(default_factory=list)

    mode = DeploymentMode.DOCKER

    def __post_init__(self) -> None:
        super().__init__(settings=None)

    def start(self, request: StartRequest) -> Started:
        self.started.append(request.deployment_id)
        assert (request.model_dir / "manifest.json").is_file()  # fetched before starting
        if self.fail_start:
            raise DeploymentFailedError("the fake runtime was told to fail")
        server = _health_server("someone-else" if self.never_healthy else request.deployment_id)
        self.servers[request.deployment_id] = server
        port = server.server_address[1]
        return Started(endpoint_url=f"http://127.0.0.1:{port}", port=int(port), image="fake:1")

    def liveness(self, deployment: Deployment) -> Liveness:
        if deployment.id in self.dead:
            return Liveness(False, "killed by the test")
        return Liveness(deployment.id in self.servers)

    def logs(self, deployment: Deployment, lines: int = 40) -> str:
        return f"fake output of {deployment.id}"

    def stop(self, deployment: Deployment, *, drain_seconds: float) -> None:
        self.stopped.append(deployment.id)
        self.events.append(f"stop {deployment.id}")
        server = self.servers.pop(deployment.id, None)
        if server is not None:
            server.shutdown()
            server.server_close()


@dataclass
class FakeManager:
    """In-memory service discovery with the client's method names and errors."""

    services: dict[int, ServicePublic] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    next_id: int = 1
    missing_clusters: set[str] = field(default_factory=set)

    def register_service(self, spec: ServiceCreate) -> ServicePublic:
        for sid, existing in list(self.services.items()):
            if existing.url == spec.url:
                del self.services[sid]
        service = ServicePublic(
            id=self.next_id,
            model_name=spec.model_name,
            model_version=spec.model_version,
            url=spec.url,
            cluster_id=spec.cluster_id,
            deployment_id=spec.deployment_id,
            health="unknown",  # as the manager: an endpoint cannot vouch for itself
            registered_at=datetime.now(UTC),
        )
        self.services[self.next_id] = service
        self.next_id += 1
        self.events.append(f"register {spec.deployment_id}")
        return service

    def list_services(self, model: str | None = None) -> ServicesPublic:
        rows = [s for s in self.services.values() if model is None or s.model_name == model]
        return ServicesPublic(data=rows, count=len(rows))

    def live_endpoints(self, model: str) -> ServicesPublic:
        rows = self.list_services(model)
        if not rows.data:
            raise NotFoundError(f"no live endpoint for model {model!r}")
        return rows

    def deregister_service(self, service_id: int) -> None:
        service = self.services.pop(service_id, None)
        if service is None:
            raise NotFoundError(f"service {service_id} not found")
        self.events.append(f"deregister {service.deployment_id}")

    def delete_cluster(self, cluster_id: str) -> None:
        if cluster_id in self.missing_clusters:
            raise ClusterNotFoundError(cluster_id)
        self.events.append(f"delete cluster {cluster_id}")
