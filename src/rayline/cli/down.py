"""`rayline down`: end what the embedded defaults left running.

Order matters: live deployments first (endpoints withdrawn from discovery, Docker
containers drained and stopped; a Serve app on a cluster ends with its cluster),
then every live cluster, then the background Cluster Manager.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from rayline.clusters import daemon
from rayline.clusters.client import ClusterManagerClient
from rayline.clusters.errors import ClusterManagerError
from rayline.config import Settings, get_settings
from rayline.metadata import DeploymentMode, DeploymentStatus, create_engine_for

console = Console()


def down() -> None:
    """Stop live deployments, delete every live cluster, stop the background Cluster Manager."""
    settings = get_settings()
    if daemon.is_answering(settings):
        try:
            with ClusterManagerClient(max_retries=1) as client:
                _drain_pools(client)
                _end_deployments(settings, client)
                for cluster in client.list_clusters().data:
                    if cluster.state.is_terminal():
                        continue
                    client.delete_cluster(cluster.id)
                    client.wait_until(cluster.id, state="TERMINATED", timeout=120)
                    console.print(f"deleted cluster {cluster.id} ({cluster.name})")
        except ClusterManagerError as err:
            console.print(f"[yellow]could not delete every cluster:[/] {escape(str(err))}")
    stopped = daemon.stop(settings)
    console.print("Cluster Manager stopped" if stopped else "no background Cluster Manager ran")


def _drain_pools(client: ClusterManagerClient) -> None:
    """End the warm spares first: the pool keeper must not refill while we delete."""
    drained = client.drain_pools()
    if drained:
        console.print(f"drained {len(drained)} pooled cluster(s): {', '.join(drained)}")


def _end_deployments(settings: Settings, client: ClusterManagerClient) -> None:
    """Withdraw and stop every active deployment; a failure is reported, not fatal."""
    from rayline.serving import records
    from rayline.serving.deployer import Deployer

    engine = create_engine_for(settings.database_url)
    try:
        deployer = Deployer(settings=settings, engine=engine, manager=client, progress=_quiet)
        for row in records.list_deployments(engine, statuses=records.ACTIVE):
            try:
                if row.mode == DeploymentMode.DOCKER:
                    deployer.delete(row.id)
                else:  # a Serve app on its cluster: it ends when the cluster is deleted below
                    for service in client.list_services(row.model_name).data:
                        if service.deployment_id == row.id:
                            client.deregister_service(service.id)
                    records.update_deployment(engine, row.id, status=DeploymentStatus.STOPPED)
                what = f"{row.model_name} v{row.model_version}"
                console.print(f"stopped deployment {row.id} ({what})")
            except Exception as err:  # keep going: the clusters must still be deleted
                console.print(f"[yellow]could not stop deployment {row.id}:[/] {escape(str(err))}")
    finally:
        engine.dispose()


def _quiet(_: str) -> None:
    """Deployer progress lines are not shown here; the summary line per deployment is."""
