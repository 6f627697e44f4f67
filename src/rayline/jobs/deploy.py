"""Ray job entrypoint: deploy, roll back or delete a served model.

    python -m rayline.jobs.deploy --model NAME[:VERSION|@ALIAS] [--port P] [--cluster-id ID] ...
    python -m rayline.jobs.deploy --rollback NAME [...]
    python -m rayline.jobs.deploy --delete DEPLOYMENT_ID|NAME

Submitted to a serving cluster by :func:`rayline.serving.submit.submit_deploy_job`
(the CLI and Airflow use it). Settings (metadata store, artifact store, Cluster
Manager address and token, serving mode) come from ``RAYLINE_*`` variables in the
job's runtime env; none is printed. The job ends with one ``RAYLINE_RESULT`` or
``RAYLINE_ERROR`` line and exits 0 (done), 2 (bad input: nothing was started)
or 1 (the deployment failed; what served before still serves).
"""

from __future__ import annotations

import argparse
import logging
import sys

from pydantic import ValidationError

from rayline.clusters.errors import ClusterManagerError
from rayline.metadata import Deployment, MetadataError, NotFoundError
from rayline.serving.errors import (
    DeploymentNotFoundError,
    InvalidModelRefError,
    PortInUseError,
    ServingError,
)
from rayline.serving.spec import ServingSpec
from rayline.storage import StorageError
from rayline.training.outcome import error_line, result_line

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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rayline.jobs.deploy", description=__doc__)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--model", help="NAME, NAME:VERSION or NAME@ALIAS to deploy")
    action.add_argument("--rollback", metavar="NAME", help="serve the previous version again")
    action.add_argument("--delete", metavar="TARGET", help="deployment id or model name to stop")
    parser.add_argument("--port", type=int, help="port to serve on (default: a free one)")
    parser.add_argument("--cluster-id", help="the serving cluster this job runs on")
    parser.add_argument("--mode", choices=["docker", "ray"], help="default: RAYLINE_SERVING_MODE")
    parser.add_argument("--spec", default="{}", help="ServingSpec as JSON (replicas, batching...)")
    parser.add_argument("--label", action="append", default=[], help="KEY=VALUE for what is made")
    parser.add_argument("--workflow-run-id", type=int, help="workflow run id, for lineage")
    return parser


def deployment_result(row: Deployment) -> dict[str, object]:
    """The JSON-ready summary of a deployment printed in the result line."""
    return {
        "deployment_id": row.id,
        "model": row.model_name,
        "version": row.model_version,
        "status": str(row.status),
        "mode": str(row.mode),
        "url": row.endpoint_url,
        "port": row.port,
        "image": row.image,
        "cluster_id": row.cluster_id,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the job; return its exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    labels = {}
    for item in args.label:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--label {item!r} is not KEY=VALUE")
        labels[key] = value
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        spec = ServingSpec.model_validate_json(args.spec)
        outcome = _run(args, spec, labels)
    except _BAD_INPUT as err:
        print(error_line(type(err).__name__, str(err)), flush=True)
        return EXIT_BAD_INPUT
    except (ServingError, StorageError, MetadataError, ClusterManagerError) as err:
        print(error_line(type(err).__name__, str(err)), flush=True)
        return EXIT_FAILED
    print(result_line(outcome), flush=True)
    return 0


def _run(args: argparse.Namespace, spec: ServingSpec, labels: dict[str, str]) -> dict[str, object]:
    from rayline.clusters.client import ClusterManagerClient
    from rayline.config import get_settings
    from rayline.metadata import create_engine_for
    from rayline.serving.deployer import Deployer

    settings = get_settings()
    engine = create_engine_for(settings.database_url)
    with ClusterManagerClient() as manager:
        deployer = Deployer(
            settings=settings,
            engine=engine,
            manager=manager,
            mode=args.mode,
            labels=labels,
            progress=lambda line: print(f"[rayline] {line}", flush=True),
        )
        if args.delete:
            stopped = deployer.delete(args.delete)
            return {"deleted": [deployment_result(row) for row in stopped]}
        if args.rollback:
            row = deployer.rollback(
                args.rollback,
                port=args.port,
                cluster_id=args.cluster_id,
                spec=spec,
                workflow_run_id=args.workflow_run_id,
            )
        else:
            row = deployer.deploy(
                args.model,
                port=args.port,
                cluster_id=args.cluster_id,
                spec=spec,
                workflow_run_id=args.workflow_run_id,
            )
        return deployment_result(row)


if __name__ == "__main__":
    sys.exit(main())
