"""`rayline down`: end what the embedded defaults left running."""

from __future__ import annotations

from rich.console import Console

from rayline.clusters import daemon
from rayline.clusters.client import ClusterManagerClient
from rayline.clusters.errors import ClusterManagerError
from rayline.config import get_settings

console = Console()


def down() -> None:
    """Delete every live cluster, then stop the background Cluster Manager."""
    settings = get_settings()
    if daemon.is_answering(settings):
        try:
            with ClusterManagerClient(max_retries=1) as client:
                for cluster in client.list_clusters().data:
                    if cluster.state.is_terminal():
                        continue
                    client.delete_cluster(cluster.id)
                    client.wait_until(cluster.id, state="TERMINATED", timeout=120)
                    console.print(f"deleted cluster {cluster.id} ({cluster.name})")
        except ClusterManagerError as err:
            console.print(f"[yellow]could not delete every cluster:[/] {err}")
    stopped = daemon.stop(settings)
    console.print("Cluster Manager stopped" if stopped else "no background Cluster Manager ran")
