"""How to start one Ray node: its ports, its ``ray start`` command line, its environment.

Pure functions, no processes: the local backend runs these command lines directly,
a Docker backend could run the same ones inside ``--network host`` containers.
Every port Ray would otherwise pick by itself (or hard-code, like the dashboard's
and the autoscaler's metrics ports) is set explicitly, so clusters never collide.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from rayline.clusters.backends.base import NodeResources
from rayline.clusters.backends.errors import UnsupportedRequestError
from rayline.clusters.backends.ports import PortBlock
from rayline.clusters.ray_auth import AUTH_MODE_ENV, TOKEN_PATH_ENV

__all__ = [
    "CLUSTER_ID_ENV",
    "LAUNCHER",
    "TEMP_DIR_ENV",
    "HeadPorts",
    "NodePorts",
    "PortPlan",
    "head_command",
    "inherited_environment",
    "plan_ports",
    "ports_needed",
    "ray_environment",
    "resource_flags",
    "worker_command",
]

#: Set in the environment of every process of a cluster (children inherit it, and
#: Ray's process titles do not overwrite it): how teardown recognises them.
TEMP_DIR_ENV = "RAYLINE_RAY_TEMP_DIR"
CLUSTER_ID_ENV = "RAYLINE_CLUSTER_ID"
#: Runs ``ray start`` but keeps an explicit loopback node IP (see the file).
LAUNCHER = Path(__file__).with_name("_ray_start.py")

_HEAD_PORTS = 5  # gcs, dashboard, client server, dashboard and autoscaler metrics
_NODE_PORTS = 6  # node manager, object manager, metrics export, agent http/grpc, runtime env


class _Ports(BaseModel):
    model_config = ConfigDict(frozen=True)


class HeadPorts(_Ports):
    """Ports only the head node opens."""

    gcs: int
    dashboard: int
    client_server: int
    dashboard_metrics: int
    autoscaler_metrics: int


class NodePorts(_Ports):
    """Ports every node opens; workers bind ``min_worker`` .. ``max_worker``."""

    node_manager: int
    object_manager: int
    metrics_export: int
    agent_http: int
    agent_grpc: int
    runtime_env_agent: int
    min_worker: int
    max_worker: int


class PortPlan(_Ports):
    """Every port of one cluster; ``nodes[0]`` is the head node."""

    head: HeadPorts
    nodes: list[NodePorts]


def ports_needed(node_count: int, worker_ports_per_node: int) -> int:
    """Size of the port block a cluster of ``node_count`` nodes needs."""
    return _HEAD_PORTS + node_count * (_NODE_PORTS + worker_ports_per_node)


def plan_ports(block: PortBlock, node_count: int, worker_ports_per_node: int) -> PortPlan:
    """Lay out a cluster's ports inside ``block`` (head ports first, then node by node)."""
    if block.count < ports_needed(node_count, worker_ports_per_node):
        raise ValueError(f"a block of {block.count} ports is too small for {node_count} nodes")
    p = block.first
    head = HeadPorts(
        gcs=p,
        dashboard=p + 1,
        client_server=p + 2,
        dashboard_metrics=p + 3,
        autoscaler_metrics=p + 4,
    )
    nodes = []
    for i in range(node_count):
        n = block.first + _HEAD_PORTS + i * (_NODE_PORTS + worker_ports_per_node)
        nodes.append(
            NodePorts(
                node_manager=n,
                object_manager=n + 1,
                metrics_export=n + 2,
                agent_http=n + 3,
                agent_grpc=n + 4,
                runtime_env_agent=n + 5,
                min_worker=n + _NODE_PORTS,
                max_worker=n + _NODE_PORTS + worker_ports_per_node - 1,
            )
        )
    return PortPlan(head=head, nodes=nodes)


def head_command(
    *,
    python: str,
    ip: str,
    temp_dir: Path,
    head: HeadPorts,
    node: NodePorts,
    resources: NodeResources,
    start_slots: tuple[Path, int] | None = None,
) -> list[str]:
    """The head node's ``ray start --head --block`` command line.

    With ``start_slots`` (lock directory, count), the launcher starts Ray only while
    holding one of that many host-wide start slots; see ``_ray_start.py``.
    """
    return [
        python,
        str(LAUNCHER),
        *_slot_flags(start_slots),
        "start",
        "--head",
        "--block",
        f"--node-ip-address={ip}",
        f"--port={head.gcs}",
        "--include-dashboard=true",
        f"--dashboard-host={ip}",
        f"--dashboard-port={head.dashboard}",
        f"--ray-client-server-port={head.client_server}",
        *_node_flags(ip, temp_dir, node, resources),
    ]


def worker_command(
    *,
    python: str,
    ip: str,
    temp_dir: Path,
    gcs_address: str,
    node: NodePorts,
    resources: NodeResources,
    start_slots: tuple[Path, int] | None = None,
    after_nodes: int = 0,
    dashboard_url: str = "",
) -> list[str]:
    """A worker node's ``ray start --address --block`` command line.

    With ``after_nodes``, the launcher first waits until that many nodes are alive
    (asking ``dashboard_url``); ``start_slots`` as for `head_command`.
    """
    wait = (
        [f"--rayline-dashboard={dashboard_url}", f"--rayline-wait-nodes={after_nodes}"]
        if after_nodes
        else []
    )
    return [
        python,
        str(LAUNCHER),
        *_slot_flags(start_slots),
        *wait,
        "start",
        "--block",
        f"--address={gcs_address}",
        f"--node-ip-address={ip}",
        # One log monitor per host and session: the head's already ships these logs.
        "--include-log-monitor=false",
        *_node_flags(ip, temp_dir, node, resources),
    ]


def _slot_flags(start_slots: tuple[Path, int] | None) -> list[str]:
    if start_slots is None:
        return []
    directory, count = start_slots
    return [f"--rayline-slots={directory}:{count}"]


def _node_flags(ip: str, temp_dir: Path, node: NodePorts, resources: NodeResources) -> list[str]:
    return [
        f"--node-manager-port={node.node_manager}",
        f"--object-manager-port={node.object_manager}",
        f"--metrics-export-port={node.metrics_export}",
        f"--dashboard-agent-listen-port={node.agent_http}",
        f"--dashboard-agent-grpc-port={node.agent_grpc}",
        f"--runtime-env-agent-port={node.runtime_env_agent}",
        f"--min-worker-port={node.min_worker}",
        f"--max-worker-port={node.max_worker}",
        f"--temp-dir={temp_dir}",
        "--disable-usage-stats",
        "--log-style=record",
        "--log-color=false",
        *resource_flags(resources),
    ]


def resource_flags(resources: NodeResources) -> list[str]:
    """``ray start`` flags for a node's resources.

    Raises:
        UnsupportedRequestError: ``ray start`` cannot express these resources.
    """
    if resources.cpus != int(resources.cpus):
        raise UnsupportedRequestError(
            f"`ray start --num-cpus` takes whole CPUs, got {resources.cpus:g}; "
            "ask for a whole number of CPUs on the local backend"
        )
    if {"CPU", "GPU", "memory"} & resources.custom.keys():
        raise UnsupportedRequestError(
            "custom resources may not be named CPU, GPU or memory; "
            "use the cpus, gpus and memory fields for those"
        )
    flags = [f"--num-cpus={int(resources.cpus)}", f"--num-gpus={resources.gpus}"]
    if resources.memory_bytes is not None:
        flags.append(f"--memory={resources.memory_bytes}")
    if resources.custom:
        flags.append(f"--resources={json.dumps(resources.custom, sort_keys=True)}")
    return flags


#: What a node takes from the environment it is started from, and why. Anything
#: else (the manager's API token, the database URL and its password, S3 keys,
#: DOCKER_HOST, proxies) stays out: every job and actor of the cluster would see it.
_INHERITED = (
    "PATH",  # finding `python`, `ray` and the tools jobs call
    "HOME",  # Python's and Ray's per-user caches (~/.cache, ~/.ray)
    "USER",  # Ray names its session and temp files by user
    "LOGNAME",
    "LANG",  # text encoding of logs and files; LC_* below too
    "TZ",  # timestamps in Ray's logs
    "TMPDIR",  # where Python and Ray put scratch files
    "LD_LIBRARY_PATH",  # native libraries (CUDA, BLAS) of a non-system install
    "VIRTUAL_ENV",  # which environment `python` and `ray` come from
    "PYTHONPATH",  # where rayline is importable from, when not installed
    "RAYLINE_HOME",  # jobs' own state and caches (paths, not secrets)
    "RAYLINE_CACHE_DIR",
    "RAYLINE_ENVIRONMENT",  # production refuses unsafe listeners in jobs too
)
_INHERITED_PREFIXES = ("LC_", "RAY_")  # locale; Ray's own tuning knobs
# Set here, or never passed on: another cluster's address or credentials.
_NOT_INHERITED = (
    "RAY_ADDRESS",
    "RAY_API_SERVER_ADDRESS",
    AUTH_MODE_ENV,
    TOKEN_PATH_ENV,
    "RAY_AUTH_TOKEN",
)


def inherited_environment(base: Mapping[str, str]) -> dict[str, str]:
    """The part of ``base`` a Ray node may see: the allow-list above."""
    return {
        name: value
        for name, value in base.items()
        if (name in _INHERITED or name.startswith(_INHERITED_PREFIXES))
        and name not in _NOT_INHERITED
    }


def ray_environment(
    base: Mapping[str, str],
    *,
    python: str,
    ip: str,
    temp_dir: Path,
    cluster_id: str,
    head: HeadPorts | None = None,
    auth_token_path: Path | None = None,
) -> dict[str, str]:
    """The environment of one node's ``ray start`` (and so of all its children).

    Only allow-listed variables of ``base`` are kept (see `inherited_environment`).

    Args:
        base: the environment to start from, usually ``os.environ``.
        python: the interpreter; its directory goes first on PATH so a job's
            ``python`` entrypoint finds the same Ray.
        ip: the node IP.
        temp_dir: the cluster's Ray temp dir, also the process marker.
        cluster_id: recorded in the environment for people reading ``ps e``.
        head: the head's ports when this is the head node.
        auth_token_path: the cluster's token file (`ray_auth`): Ray then refuses
            every dashboard, Jobs API and GCS call without the token, and the
            node's drivers and workers authenticate with it. None leaves the
            choice to Ray (no token: open to every local process).
    """
    env = inherited_environment(base)
    env.update(
        {
            "PATH": os.pathsep.join(filter(None, [str(Path(python).parent), base.get("PATH")])),
            "RAY_USAGE_STATS_ENABLED": "0",
            # Under `uv run` Ray would re-run workers through uv, which may download.
            "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0",
            # The whole cluster goes away on teardown: draining only delays it.
            "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
            TEMP_DIR_ENV: str(temp_dir),
            CLUSTER_ID_ENV: cluster_id,
        }
    )
    if auth_token_path is not None:
        env[AUTH_MODE_ENV] = "token"
        env[TOKEN_PATH_ENV] = str(auth_token_path)
    if ipaddress.ip_address(ip).is_loopback:
        # Ray rewrites a loopback address to the host's public IP (it assumes a
        # multi-host cluster). This switch keeps drivers and the dashboard, which
        # connect to "127.0.0.1:<gcs>", on loopback; `_ray_start.py` undoes its
        # side effect for `ray start` itself.
        env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    if head is not None:
        # Ray hard-codes these two (44227, 44217); two heads would collide.
        env["DASHBOARD_METRIC_PORT"] = str(head.dashboard_metrics)
        env["AUTOSCALER_METRIC_PORT"] = str(head.autoscaler_metrics)
    return env
