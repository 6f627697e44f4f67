"""Serve a model in its own Docker container (``--network host``, Ray Serve inside).

The container's Ray node opens many ports on the host's network, so they are
leased from the same allocator (and the same lease file) as the local Ray
clusters: containers and clusters never collide. The lease is guarded by a
file that is removed when the deployment stops, so a lease of a deployment
that vanished is reclaimed by the next allocation.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from rayline.clusters.backends.ports import PortAllocator, PortBlock
from rayline.clusters.backends.ray_nodes import plan_ports, ports_needed
from rayline.metadata import Deployment, DeploymentMode
from rayline.serving import high_throughput
from rayline.serving.base_image import resolve_base_image
from rayline.serving.container import RUNTIME_ENV, ContainerConfig, ContainerRuntime
from rayline.serving.docker_engine import LABEL_PREFIX, docker_client
from rayline.serving.errors import DockerUnavailableError, PortInUseError
from rayline.serving.model_image import build_model_image
from rayline.serving.net import port_free
from rayline.serving.runtimes.base import Liveness, ServingRuntime, Started, StartRequest
from rayline.serving.runtimes.hardening import hardened_run_options
from rayline.serving.spec import ServingSpec

__all__ = ["DockerRuntime", "container_name", "endpoint_host"]

log = logging.getLogger(__name__)

# Beyond graceful_shutdown_timeout_s: Serve's own shutdown and Ray's exit.
_STOP_MARGIN_SECONDS = 15


def container_name(deployment_id: str) -> str:
    """The container of a deployment: ``rayline-<deployment id>``."""
    return f"rayline-{deployment_id}"


def endpoint_host(host: str) -> str:
    """The host to put in URLs for a server bound to ``host``."""
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


class DockerRuntime(ServingRuntime):
    """A model image per version, a container per deployment."""

    mode = DeploymentMode.DOCKER

    def __init__(self, settings: Any, client: Any = None) -> None:
        super().__init__(settings)
        self._client = client
        self._ports = PortAllocator(
            settings.cluster_state_dir,
            start=settings.local_port_range_start,
            end=settings.local_port_range_end,
            host=settings.ray_bind_address,
        )

    @property
    def client(self) -> Any:
        """The Docker client, connected on first use."""
        if self._client is None:
            self._client = docker_client()
        return self._client

    def start(self, request: StartRequest) -> Started:
        """Build (or reuse) the model image and start its container."""
        owner = f"serving-{request.deployment_id}"
        guard = self._guard(request.deployment_id)
        guard.parent.mkdir(parents=True, exist_ok=True)
        guard.touch()
        ray_ports = ports_needed(1, self.settings.local_worker_ports_per_node)
        serve_ports = (
            high_throughput.ports_needed(request.spec.replica_slots)
            if request.spec.high_throughput
            else 0
        )
        # [Ray node ports][high-throughput ports][HTTP port]
        block = self._ports.allocate(owner, ray_ports + serve_ports + 1, guard=guard)
        try:
            port = self._http_port(request, block)
            serve_env = (
                high_throughput.high_throughput_env(
                    PortBlock(block.first + ray_ports, serve_ports), request.spec.replica_slots
                )
                if serve_ports
                else {}
            )
            return self._run(request, port, PortBlock(block.first, ray_ports), serve_env)
        except BaseException:
            self._release(request.deployment_id)
            raise

    def _http_port(self, request: StartRequest, block: PortBlock) -> int:
        if request.port is None:
            return block.last
        if not port_free(request.host, request.port):
            raise PortInUseError(request.host, request.port)
        return request.port

    def _run(
        self, request: StartRequest, port: int, block: PortBlock, serve_env: dict[str, str]
    ) -> Started:
        served = request.served
        config = ContainerConfig(
            served=served,
            # The image keeps the defaults; the real spec comes at run time, so a
            # spec change does not force a new image.
            spec=ServingSpec(),
            rayline_version=_rayline_version(),
        )
        image = build_model_image(
            self.client,
            base=resolve_base_image(self.settings),
            model_dir=request.model_dir,
            config_json=config.model_dump_json(indent=2),
            name=served.name,
            version=served.version,
            sha256=served.sha256,
            labels=request.labels,
            progress=request.progress,
        )
        request.progress(f"image {image.tag} {'reused' if image.reused else 'built'}")
        per_node = self.settings.local_worker_ports_per_node
        runtime = ContainerRuntime(
            deployment_id=request.deployment_id,
            host=request.host,
            port=port,
            ports=plan_ports(block, 1, per_node),
            spec=request.spec,
            serve_env=serve_env,
        )
        # Extra labels first: ours win, so no caller can make a container pass for
        # another deployment or version (teardown and reuse go by these labels).
        labels = {
            **request.labels,
            f"{LABEL_PREFIX}deployment": request.deployment_id,
            f"{LABEL_PREFIX}model": served.name,
            f"{LABEL_PREFIX}version": str(served.version),
            f"{LABEL_PREFIX}sha256": served.sha256,
        }
        container = self.client.containers.run(
            image.tag,
            detach=True,
            name=container_name(request.deployment_id),
            network_mode="host",
            init=True,  # docker-init forwards SIGTERM and reaps Ray's processes
            shm_size="256m",
            # The only variable set at run time: no credential of the stack, the model
            # is in the image.
            environment={RUNTIME_ENV: runtime.model_dump_json()},
            labels=labels,
            **hardened_run_options(request.spec, engine_cpus=self._engine_cpus()),
        )
        request.progress(f"container {container.name} started, serving on port {port}")
        return Started(
            endpoint_url=f"http://{endpoint_host(request.host)}:{port}",
            port=port,
            image=image.tag,
            container_id=container.id,
        )

    def _engine_cpus(self) -> int | None:
        """The Docker engine's CPUs (it refuses a CPU limit above them), None if unknown."""
        from docker.errors import APIError

        try:
            cpus = self.client.info().get("NCPU")
        except APIError:
            return None
        return int(cpus) if cpus else None

    def liveness(self, deployment: Deployment) -> Liveness:
        """Alive while the container is running."""
        container = self._container(deployment)
        if container is None:
            return Liveness(False, f"container {container_name(deployment.id)} no longer exists")
        container.reload()
        if container.status == "running":
            return Liveness(True)
        code = container.attrs.get("State", {}).get("ExitCode")
        return Liveness(
            False, f"container {container.name} is {container.status} (exit code {code})"
        )

    def logs(self, deployment: Deployment, lines: int = 40) -> str:
        """The container's last output lines."""
        container = self._container(deployment)
        if container is None:
            return ""
        raw: bytes = container.logs(tail=lines)
        return raw.decode("utf-8", errors="replace")

    def stop(self, deployment: Deployment, *, drain_seconds: float) -> None:
        """SIGTERM (the server drains), wait, remove the container, release its ports."""
        from docker.errors import APIError, NotFound

        container = self._container(deployment)
        if container is not None:
            if drain_seconds > 0:  # 0: a failed server, nothing to drain
                drain_seconds = max(drain_seconds, _graceful_timeout(container))
            try:
                container.stop(timeout=int(drain_seconds) + _STOP_MARGIN_SECONDS)
                container.remove(force=True)
            except NotFound:
                pass
            except APIError as err:
                raise DockerUnavailableError(
                    f"could not stop container {container.name}: {err}; remove it with "
                    f"`docker rm -f {container.name}`"
                ) from err
        self._release(deployment.id)

    def _container(self, deployment: Deployment) -> Any:
        from docker.errors import NotFound

        try:
            return self.client.containers.get(
                deployment.container_id or container_name(deployment.id)
            )
        except NotFound:
            return None

    def _guard(self, deployment_id: str) -> Path:
        return Path(self.settings.cluster_state_dir, "serving", deployment_id)

    def _release(self, deployment_id: str) -> None:
        self._ports.release(f"serving-{deployment_id}")
        self._guard(deployment_id).unlink(missing_ok=True)


def _graceful_timeout(container: Any) -> float:
    """The drain time the container was started with (0 when unknown)."""
    prefix = f"{RUNTIME_ENV}="
    for item in container.attrs.get("Config", {}).get("Env") or []:
        if item.startswith(prefix):
            try:
                runtime = ContainerRuntime.model_validate_json(item[len(prefix) :])
            except ValueError:
                return 0.0
            return runtime.spec.graceful_shutdown_timeout_s
    return 0.0


def _rayline_version() -> str:
    import rayline

    return rayline.__version__
