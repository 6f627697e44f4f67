"""Inside a model container: start a one-node Ray, run the Serve app, drain on SIGTERM.

Run as ``python -m rayline.serving.container --config /opt/rayline/serving.json``
(the image's command). What the image holds is in the config file; what is
decided at deploy time (deployment id, host, port, the Ray ports leased on the
host) comes in the ``RAYLINE_SERVING_RUNTIME`` environment variable, as JSON.

The container shares the host's network (``--network host``), so every port
Ray opens is one the deploy job leased from the same port allocator as the
local clusters, and the HTTP server binds the configured host (127.0.0.1 by
default).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from pydantic import BaseModel, ConfigDict, Field

from rayline.clusters.backends.ray_nodes import PortPlan
from rayline.serving.model import ServedModel
from rayline.serving.net import port_free
from rayline.serving.spec import ServingSpec

__all__ = [
    "RUNTIME_ENV",
    "ContainerConfig",
    "ContainerRuntime",
    "connect_driver",
    "main",
    "start_ray_node",
    "stop_ray_node",
]

log = logging.getLogger("rayline.serving.container")

RUNTIME_ENV = "RAYLINE_SERVING_RUNTIME"
#: Ray's temp dirs in containers live here, apart from the host clusters' base
#: (the host sees container processes in /proc and must not take them for its own).
TEMP_BASE = "/tmp/rls"
OBJECT_STORE_BYTES = 128 * 1024 * 1024
EXIT_PORT_IN_USE = 3
EXIT_BAD_MODEL = 4
EXIT_RAY_DIED = 5
_CONNECT_TIMEOUT_SECONDS = 120.0


class ContainerConfig(BaseModel):
    """What a model image serves (``/opt/rayline/serving.json``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    served: ServedModel
    spec: ServingSpec
    rayline_version: str


class ContainerRuntime(BaseModel):
    """What one container run is told at deploy time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    deployment_id: str
    host: str
    port: int
    ports: PortPlan
    spec: ServingSpec
    #: Extra ``RAY_SERVE_*`` variables for the node (high-throughput mode's ports).
    serve_env: dict[str, str] = Field(default_factory=dict)


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM, then drain; returns the process exit status."""
    # Before anything imports Ray: this driver must reach the node on loopback
    # (the same switch the node gets, see rayline.clusters.backends.ray_nodes).
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    parser = argparse.ArgumentParser(prog="python -m rayline.serving.container")
    parser.add_argument("--config", type=Path, required=True)
    args = parser.parse_args(argv)
    config = ContainerConfig.model_validate_json(args.config.read_text())
    runtime = ContainerRuntime.model_validate_json(os.environ[RUNTIME_ENV])
    model_dir = args.config.parent / "model"
    _configure_serve(runtime)

    from rayline.serving.errors import ServingError
    from rayline.serving.model import verify_model_dir

    try:
        verify_model_dir(model_dir, config.served.sha256)
    except (ServingError, OSError, ValueError, KeyError) as err:
        log.error("refusing to serve: the model files cannot be trusted: %s", err)
        return EXIT_BAD_MODEL
    if not port_free(runtime.host, runtime.port):
        log.error(
            "port %s on %s is already in use by another program; deploy on another port",
            runtime.port,
            runtime.host,
        )
        return EXIT_PORT_IN_USE

    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("got %s: draining", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    ray_node = start_ray_node(runtime)
    try:
        return _serve(config, runtime, model_dir, ray_node, stop)
    finally:
        stop_ray_node(ray_node)


def _configure_serve(runtime: ContainerRuntime) -> None:
    """Serve reads its switches from the environment of every process: set them now."""
    os.environ.update(runtime.serve_env)
    if runtime.serve_env.get("RAY_SERVE_ENABLE_HA_PROXY") == "1":
        from rayline.serving.high_throughput import write_loopback_wrapper
        from rayline.serving.model_image import HAPROXY_WRAPPER_DIR

        # The image's copy: the writable /tmp of a hardened container is noexec.
        wrapper = Path(HAPROXY_WRAPPER_DIR, "haproxy")
        if not os.access(wrapper, os.X_OK):
            wrapper = write_loopback_wrapper(Path(TEMP_BASE, "haproxy-bin"))
        os.environ["RAY_SERVE_HAPROXY_BINARY_PATH"] = str(wrapper)
        log.info("high-throughput mode: HAProxy in front of the replicas")


def _serve(
    config: ContainerConfig,
    runtime: ContainerRuntime,
    model_dir: Path,
    ray_node: subprocess.Popen[bytes],
    stop: threading.Event,
) -> int:
    from ray import serve

    from rayline.serving.app import build_app
    from rayline.serving.metrics_dirs import new_metrics_dir

    connect_driver(f"127.0.0.1:{runtime.ports.head.gcs}", ray_node, stop)
    if stop.is_set():
        return 0
    serve.start(
        proxy_location="HeadOnly",
        http_options={"host": runtime.host, "port": runtime.port},
        logging_config=runtime.spec.logging_config(),
    )
    app = build_app(
        source={"dir": str(model_dir)},
        served=config.served,
        spec=runtime.spec,
        deployment_id=runtime.deployment_id,
        # In the container's own file system: it goes when the container is removed.
        metrics_dir=new_metrics_dir(runtime.deployment_id),
    )
    serve.run(app, name=config.served.name, route_prefix="/")
    log.info(
        "serving %s version %s on http://%s:%s",
        config.served.name,
        config.served.version,
        runtime.host,
        runtime.port,
    )
    while not stop.wait(1.0):
        if ray_node.poll() is not None:
            log.error("the Ray node exited with status %s; stopping", ray_node.returncode)
            return EXIT_RAY_DIED
    # Deletes the app: replicas finish their in-flight requests (up to
    # graceful_shutdown_timeout_s) before they exit.
    serve.shutdown()  # type: ignore[no-untyped-call]
    log.info("drained; exiting")
    return 0


def start_ray_node(runtime: ContainerRuntime) -> subprocess.Popen[bytes]:
    """``ray start --head --block`` with the leased ports, in a process group of its own."""
    from rayline.clusters.backends.base import NodeResources
    from rayline.clusters.backends.ray_nodes import head_command, ray_environment

    temp_dir = Path(TEMP_BASE, runtime.deployment_id)
    head, node = runtime.ports.head, runtime.ports.nodes[0]
    command = head_command(
        python=sys.executable,
        ip="127.0.0.1",
        temp_dir=temp_dir,
        head=head,
        node=node,
        resources=NodeResources(cpus=runtime.spec.ray_cpus),
    )
    # Serve needs no dashboard; it would only cost memory and start-up time.
    command = [
        "--include-dashboard=false" if arg == "--include-dashboard=true" else arg for arg in command
    ]
    command.append(f"--object-store-memory={OBJECT_STORE_BYTES}")
    env = ray_environment(
        os.environ,
        python=sys.executable,
        ip="127.0.0.1",
        temp_dir=temp_dir,
        cluster_id=runtime.deployment_id,
        head=head,
    )
    log.info("starting Ray: %s", " ".join(command[1:4]))
    return subprocess.Popen(command, env=env, start_new_session=True)


def connect_driver(address: str, ray_node: subprocess.Popen[bytes], stop: threading.Event) -> None:
    """Connect this process to the node as a driver once its GCS accepts connections.

    ``ray.init`` itself would keep retrying a GCS that never came up (e.g. its
    port was taken), so the node process is watched while waiting.
    """
    import ray

    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + _CONNECT_TIMEOUT_SECONDS
    while not stop.is_set():
        if ray_node.poll() is not None:
            raise RuntimeError(
                f"ray start exited with status {ray_node.returncode} before its GCS answered "
                "(see the lines above)"
            )
        try:
            with socket.create_connection((host, int(port)), timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Ray GCS at {address} did not come up") from None
            time.sleep(0.5)
    if not stop.is_set():
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)


def stop_ray_node(ray_node: subprocess.Popen[bytes]) -> None:
    if ray_node.poll() is not None:
        return
    try:
        os.killpg(ray_node.pid, signal.SIGTERM)
        ray_node.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(ray_node.pid, signal.SIGKILL)
        ray_node.wait(timeout=10)
    except ProcessLookupError:
        pass


if __name__ == "__main__":
    sys.exit(main())
