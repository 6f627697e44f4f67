"""Ray job entrypoint: train one spec on the cluster this job runs on.

    python -m rayline.jobs.train --spec SPEC [--run-name NAME] [--workflow-run-id N]

``SPEC`` is a YAML/JSON file path or inline JSON. Settings (artifact store, S3
endpoint and keys, metadata store) come from ``RAYLINE_*`` variables, which
:func:`rayline.training.submit.submit_training` puts in the job's runtime env.
The job ends with a ``RAYLINE_RESULT`` or ``RAYLINE_ERROR`` line (see
:mod:`rayline.training.outcome`) and exits 0 (trained and registered), 2 (bad
input: nothing was trained) or 1 (training or storage failed).
"""

from __future__ import annotations

import argparse
import logging
import secrets
import sys
from datetime import UTC, datetime

from rayline.metadata import MetadataError
from rayline.storage import StorageError
from rayline.training.errors import (
    DatasetError,
    InsufficientResourcesError,
    InvalidSpecError,
    TrainingError,
)
from rayline.training.outcome import error_line, result_line
from rayline.training.spec import load_spec

__all__ = ["main"]

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
_BAD_INPUT = (InvalidSpecError, DatasetError, InsufficientResourcesError)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rayline.jobs.train", description=__doc__)
    parser.add_argument("--spec", required=True, help="spec file (YAML/JSON) or inline JSON")
    parser.add_argument("--run-name", help="Ray Train run name; the same name resumes that run")
    parser.add_argument("--workflow-run-id", type=int, help="workflow run id, for lineage")
    return parser


def _quiet_ray() -> None:
    """Connect to the cluster with Ray's own chatter turned down; our lines stay readable."""
    import ray
    import ray.data

    ray.init(logging_level=logging.WARNING, log_to_driver=True)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    for name in ("ray.data", "ray.train", "ray.tune"):
        logging.getLogger(name).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    """Run the job; return its exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        spec = load_spec(args.spec)
        run_name = args.run_name or f"{spec.name}-{_stamp()}"
        print(
            f"[rayline] training {spec.name} ({spec.framework}, {spec.task}) on {spec.dataset} "
            f"with {spec.workers} worker(s); run {run_name}",
            flush=True,
        )
        from rayline.config import get_settings
        from rayline.training.runner import run_training

        outcome = run_training(
            spec,
            settings=get_settings(),
            run_name=run_name,
            workflow_run_id=args.workflow_run_id,
            connect=_quiet_ray,
        )
    except _BAD_INPUT as err:
        print(error_line(type(err).__name__, str(err)), flush=True)
        return EXIT_BAD_INPUT
    except (TrainingError, StorageError, MetadataError) as err:
        print(error_line(type(err).__name__, str(err)), flush=True)
        return EXIT_FAILED
    print(
        f"[rayline] registered {outcome.name} version {outcome.version} ({outcome.artifact_uri})",
        flush=True,
    )
    print(result_line(outcome.to_dict()), flush=True)
    return 0


def _stamp() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


if __name__ == "__main__":
    sys.exit(main())
