"""Ray job entrypoint: train one spec on the cluster this job runs on.

    python -m rayline.jobs.train --spec SPEC [--run-name NAME] [--workflow-run-id N]

``SPEC`` is a YAML/JSON file path or inline JSON; the arguments are a
:class:`rayline.jobs.requests.TrainRequest`. Settings (artifact store, S3
endpoint and keys, metadata store) come from ``RAYLINE_*`` variables that
:func:`rayline.jobs.env.job_env` puts in the job's runtime env. The job ends
with a ``RAYLINE_RESULT`` line (a :class:`rayline.jobs.results.TrainResult`) or
a ``RAYLINE_ERROR`` line (see :mod:`rayline.jobs.output`) and exits 0 (trained
and registered), 2 (bad input: nothing was trained) or 1 (training or storage
failed).
"""

from __future__ import annotations

import logging
import secrets
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rayline.jobs.output import error_line, result_line
from rayline.jobs.requests import TrainRequest
from rayline.jobs.results import TrainResult
from rayline.metadata import MetadataError
from rayline.storage import StorageError
from rayline.tracking.errors import TrackingUnavailableError
from rayline.training.errors import (
    DatasetError,
    InsufficientResourcesError,
    InvalidSpecError,
    TrainingError,
)

if TYPE_CHECKING:
    from rayline.tracking.tracker import Tracker

__all__ = ["main"]

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
_BAD_INPUT = (InvalidSpecError, DatasetError, InsufficientResourcesError, TrackingUnavailableError)


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
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        request = TrainRequest.from_argv(sys.argv[1:] if argv is None else argv)
        spec = request.spec
        run_name = request.run_name or f"{spec.name}-{_stamp()}"
        print(
            f"[rayline] training {spec.name} ({spec.framework}, {spec.task}) on {spec.dataset} "
            f"with {spec.workers} worker(s); run {run_name}",
            flush=True,
        )
        from rayline.config import get_settings
        from rayline.tracking.tracker import open_tracker
        from rayline.training.lineage import code_version
        from rayline.training.runner import run_training

        tracker = open_tracker(  # before training: MLflow refusing stops the run here
            model_name=spec.name,
            run_name=run_name,
            workflow_run_id=request.workflow_run_id,
            code_version=code_version(),
        )
        _say_tracking(tracker)
        try:
            outcome = run_training(
                spec,
                settings=get_settings(),
                run_name=run_name,
                workflow_run_id=request.workflow_run_id,
                connect=_quiet_ray,
                observer=tracker,
            )
        except BaseException:
            tracker.finish(succeeded=False)
            raise
        tracker.register(
            name=outcome.name,
            version=outcome.version,
            version_id=outcome.version_id,
            artifact_uri=outcome.artifact_uri,
        )
        tracker.finish(succeeded=True)
        _say_tracking(tracker)
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
    result = {**outcome.to_dict(), "tracking_error": tracker.failure}
    print(result_line(TrainResult.model_validate(result)), flush=True)
    return 0


def _say_tracking(tracker: Tracker) -> None:
    if tracker.failure:
        print(
            f"[rayline] tracking failed, run untracked: {tracker.failure} "
            "(`rayline models sync-mlflow` records it in MLflow later)",
            flush=True,
        )
    elif tracker.location:
        print(f"[rayline] MLflow: {tracker.location}", flush=True)


def _stamp() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


if __name__ == "__main__":
    sys.exit(main())
