"""What the local backend stores about a cluster: its nodes, processes, ports and dirs.

`LocalHandleData` is the backend's private part of a `ClusterHandle`; it is enough
to find, probe and kill every process of the cluster from another manager process.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import BaseModel, ConfigDict

from rayline.clusters.backends.processes import ProcessRecord
from rayline.clusters.backends.ray_nodes import NodePorts, PortPlan

__all__ = ["LocalHandleData", "LocalNode", "host_port"]


class LocalNode(BaseModel):
    """One started node: its ``ray start`` process, log and ports."""

    model_config = ConfigDict(frozen=True)

    name: str
    role: Literal["head", "worker"]
    process: ProcessRecord
    log_file: str
    ports: NodePorts


class LocalHandleData(BaseModel):
    """The local backend's private part of a `ClusterHandle` (``handle.handle``)."""

    model_config = ConfigDict(frozen=True)

    temp_dir: str
    log_dir: str
    ip: str
    ports: PortPlan
    nodes: list[LocalNode]

    @property
    def head(self) -> LocalNode:
        """The head node (always first)."""
        return self.nodes[0]


def host_port(ip: str, port: int) -> str:
    """``ip:port``, with brackets around an IPv6 address."""
    return f"[{ip}]:{port}" if ipaddress.ip_address(ip).version == 6 else f"{ip}:{port}"
