"""Ray job entrypoint: deploy, roll back or delete a served model.

    python -m rayline.jobs.deploy --deploy NAME[:VERSION|@ALIAS] [--port P] [--cluster-id ID] ...
    python -m rayline.jobs.deploy --rollback NAME [...]
    python -m rayline.jobs.deploy --delete DEPLOYMENT_ID|NAME

The arguments are a :class:`rayline.jobs.requests.DeployRequest`, submitted by
:class:`rayline.jobs.client.JobClient` (the CLI, Airflow and serving use it).
Settings (metadata store, artifact store, Cluster Manager address and token,
serving mode) come from ``RAYLINE_*`` variables in the job's runtime env; none
is printed. The job ends with one ``RAYLINE_RESULT`` line (a
:class:`~rayline.jobs.results.DeployResult`, or a
:class:`~rayline.jobs.results.DeleteResult` for ``--delete``) or a
``RAYLINE_ERROR`` line, and exits 0 (done), 2 (bad input: nothing was started)
or 1 (the deployment failed; what served before still serves).
"""

from __future__ import annotations

import logging
import sys

from pydantic import ValidationError

from rayline.clusters.errors import ClusterManagerError
from rayline.jobs.output import error_line, result_line
from rayline.jobs.requests import DeployRequest
from rayline.jobs.results import DeleteResult, DeployResult
from rayline.metadata import Deployment, MetadataError, NotFoundError
from rayline.serving.errors import (
    DeploymentNotFoundError,
    InvalidModelRefError,
    PortInUseError,
    ServingError,
)
from rayline.storage import StorageError

__all__ = ["deployment_result", "main"]

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
_BAD_INPUT = (
    InvalidModelRefError,
    PortInUseError,
    NotFoundError,
    DeploymentNotFoundError,
    ValidationError,
)


def deployment_result(row: Deployment) -> DeployResult:
    """The typed summary of a deployment printed in the result line."""
    return DeployResult(
        deployment_id=row.id,
        model=row.model_name,
        version=row.model_version,
        status=str(row.status),
        mode=str(row.mode),
        url=row.endpoint_url,
        port=row.port,
        image=row.image,
        cluster_id=row.cluster_id,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the job; return its exit status."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        request = DeployRequest.from_argv(sys.argv[1:] if argv is None else argv)
    except ValueError as err:  # InvalidModelRefError and ValidationError are ValueErrors
        print(error_line(type(err).__name__, str(err)), flush=True)
        return EXIT_BAD_INPUT
    try:
        outcome = _run(request)
    except _BAD_INPUT as err:
        print(error_line(type(err).__name__, str(err)), flush=True)
        return EXIT_BAD_INPUT
    except (ServingError, StorageError, MetadataError, ClusterManagerError) as err:
        print(error_line(type(err).__name__, str(err)), flush=True)
        return EXIT_FAILED
    print(result_line(outcome), flush=True)
    return 0


def _run(request: DeployRequest) -> DeployResult | DeleteResult:
    from rayline.clusters.client import ClusterManagerClient
    from rayline.config import get_settings
    from rayline.metadata import create_engine_for
    from rayline.serving.deployer import Deployer
    from rayline.tracking.live import live_alias_hook

    settings = get_settings()
    engine = create_engine_for(settings.database_url)

    def say(line: str) -> None:
        print(f"[rayline] {line}", flush=True)

    with ClusterManagerClient() as manager:
        deployer = Deployer(
            settings=settings,
            engine=engine,
            manager=manager,
            mode=request.mode,
            labels=dict(request.labels),
            progress=say,
            on_live=live_alias_hook(say),  # MLflow's `live` follows; its failure is only said
        )
        if request.action == "delete":
            stopped = deployer.delete(request.model)
            return DeleteResult(deleted=[deployment_result(row) for row in stopped])
        if request.action == "rollback":
            row = deployer.rollback(
                request.model,
                port=request.port,
                cluster_id=request.cluster_id,
                spec=request.spec,
                workflow_run_id=request.workflow_run_id,
            )
        else:
            row = deployer.deploy(
                request.ref,
                port=request.port,
                cluster_id=request.cluster_id,
                spec=request.spec,
                workflow_run_id=request.workflow_run_id,
            )
        return deployment_result(row)


if __name__ == "__main__":
    sys.exit(main())
