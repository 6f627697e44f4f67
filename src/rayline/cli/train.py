"""`rayline train SPEC`: train a model on a Ray cluster and register the new version.

Without ``--cluster`` a training cluster sized from the spec is requested from
the Cluster Manager, used, and deleted at the end, also when training fails or
is interrupted. The job's logs stream to the terminal; the registered version
and its metrics are printed at the end. Exit status: 0 trained, 1 failed,
2 bad spec, 130 interrupted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rayline.clusters.client import ClusterManagerClient
from rayline.clusters.errors import ClusterManagerError
from rayline.clusters.schemas import ClusterCreate, ClusterPublic, Purpose
from rayline.jobs.client import JobApiError, JobClient, JobOutcome
from rayline.jobs.requests import TrainRequest
from rayline.jobs.results import TrainResult
from rayline.training.errors import DatasetError, InvalidSpecError
from rayline.training.prechecks import check_training_input
from rayline.training.resources import cluster_name_for, training_cluster_shape
from rayline.training.spec import TrainingSpec, load_spec

__all__ = ["cluster_request_for", "train"]

console = Console()
err_console = Console(stderr=True)


def cluster_request_for(spec: TrainingSpec, *, ttl_seconds: int) -> ClusterCreate:
    """A training cluster that fits the spec (see `training_cluster_shape`)."""
    return ClusterCreate.model_validate(
        {
            "name": cluster_name_for(spec),
            "purpose": Purpose.TRAINING,
            **training_cluster_shape(spec).request_fields(),
            "ttl_seconds": ttl_seconds,
            "labels": {"rayline.model": spec.name[:63]},
        }
    )


def train(
    spec_path: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, metavar="SPEC", help="Training spec (YAML or JSON)."
        ),
    ],
    cluster: Annotated[
        str | None,
        typer.Option("--cluster", help="Train on this READY cluster instead of a new one."),
    ] = None,
    workflow_run_id: Annotated[
        int | None, typer.Option(help="Workflow run to record as the version's lineage.")
    ] = None,
    ready_timeout: Annotated[
        float, typer.Option(min=1, help="Seconds to wait for a new cluster to be READY.")
    ] = 600,
    ttl: Annotated[int, typer.Option(min=60, help="Lifetime of a new cluster, seconds.")] = 4
    * 3600,
) -> None:
    """Train SPEC on a Ray cluster and register the new model version."""
    try:
        spec = load_spec(spec_path)
        check_training_input(spec)  # before any cluster: a wrong target fails in a second
    except (InvalidSpecError, DatasetError) as err:
        err_console.print(f"[red]error:[/] {escape(str(err))}", soft_wrap=True)
        raise typer.Exit(2) from None
    try:
        with ClusterManagerClient() as client:
            outcome = _train_on_cluster(
                client,
                spec,
                cluster_id=cluster,
                ready_timeout=ready_timeout,
                ttl=ttl,
                workflow_run_id=workflow_run_id,
            )
    except (ClusterManagerError, JobApiError) as err:
        err_console.print(f"[red]error:[/] {escape(str(err))}", soft_wrap=True)
        raise typer.Exit(1) from None
    if not outcome.succeeded:
        err_console.print(f"[red]training failed:[/] {escape(outcome.describe_failure())}")
        bad_input = outcome.error is not None and outcome.error.error in _BAD_INPUT
        raise typer.Exit(2 if bad_input else 1)
    _print_result(outcome)


_BAD_INPUT = {
    "InvalidSpecError",
    "DatasetError",
    "DatasetNotFoundError",
    "DatasetUnreachableError",
    "EmptyDatasetError",
    "MissingTargetError",
    "NonNumericFeaturesError",
    "InsufficientResourcesError",
}


def _train_on_cluster(
    client: ClusterManagerClient,
    spec: TrainingSpec,
    *,
    cluster_id: str | None,
    ready_timeout: float,
    ttl: int,
    workflow_run_id: int | None,
) -> JobOutcome[TrainResult]:
    if cluster_id is not None:
        return _run_job(client, client.get_cluster(cluster_id), spec, workflow_run_id)
    created = client.create_cluster(cluster_request_for(spec, ttl_seconds=ttl))
    err_console.print(f"requested cluster [bold]{created.id}[/] for {escape(spec.name)}")
    try:
        with err_console.status(f"waiting for cluster {created.id} to be READY"):
            ready = client.wait_until_ready(created.id, timeout=ready_timeout)
        return _run_job(client, ready, spec, workflow_run_id)
    finally:
        # Always: a failed or interrupted run must not leave a cluster behind.
        client.delete_cluster(created.id)
        err_console.print(f"deleted cluster [bold]{created.id}[/]")


def _run_job(
    client: ClusterManagerClient,
    cluster: ClusterPublic,
    spec: TrainingSpec,
    workflow_run_id: int | None,
) -> JobOutcome[TrainResult]:
    if cluster.job_api_url is None:
        raise JobApiError(
            f"cluster {cluster.id} is {cluster.state.value} and has no job API yet; "
            f"wait for it: `rayline clusters wait {cluster.id}`"
        )
    jobs = JobClient.for_cluster(cluster, client)  # with the cluster's Ray token
    job_id = jobs.submit(TrainRequest(spec=spec, workflow_run_id=workflow_run_id))
    err_console.print(f"submitted job [bold]{job_id}[/] to cluster {cluster.id}")
    try:
        return jobs.follow(job_id, TrainResult, on_output=_echo)
    except KeyboardInterrupt:
        jobs.stop(job_id)
        err_console.print(f"interrupted: stopped job {job_id}")
        raise typer.Exit(130) from None


def _echo(chunk: str) -> None:
    # Plain write: the job's lines carry their own formatting and may contain [brackets].
    console.file.write(chunk)
    console.file.flush()


def _print_result(outcome: JobOutcome[TrainResult]) -> None:
    result = outcome.result
    assert result is not None  # a succeeded outcome has its result
    console.print(
        f"\nregistered [bold]{escape(result.name)}[/] version "
        f"[bold green]{result.version}[/] ({escape(result.artifact_uri)})"
    )
    table = Table("METRIC", "VALUE", title="metrics", title_justify="left")
    for key, value in sorted(result.metrics.items()):
        table.add_row(key, f"{value:.6g}")
    console.print(table)
    console.print(f"\nNext: rayline models show {escape(result.name)}:{result.version}")
