"""Ray's own path, none of Rayline: the documented ``XGBoostTrainer`` recipe as a Ray job.

``benchmarks/training.py`` submits this script to the same cluster as our
training job, through the same Job Submission API, so the difference between
the two is what Rayline itself adds (spec checks, lineage, hashing, artifacts,
registration) and the floor is what Ray's machinery costs on this machine.

It follows Ray's XGBoost guide: ``ray.data.read_parquet`` with Ray's defaults,
``train_test_split``, an ``XGBoostTrainer`` whose workers materialise their
shard to pandas and call ``xgboost.train``. The booster params match ours
(hist, nthread = CPUs per worker, logloss on the train and validation sets
every round) and so does the report schedule: one ``ray.train.report`` with
the checkpoint at the end. The guide's ``RayTrainReportCallback`` reports the
metrics after every round, and each report is a round trip through Ray Train's
controller (about 1.5 s here: 500 rounds would take 12 minutes), so it is not
used; our own callback reports only when it checkpoints.

    python benchmarks/ray_train_floor.py --data PATH --workers N --cpus C --rounds R
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import ray
import ray.train
import xgboost
from ray.train import RunConfig, ScalingConfig
from ray.train.xgboost import RayTrainReportCallback, XGBoostTrainer

TARGET = "label"


def train_fn_per_worker(config: dict[str, Any]) -> None:
    """Ray's guide: materialise the shards, build DMatrix objects, train."""
    train = ray.train.get_dataset_shard("train").materialize().to_pandas()
    valid = ray.train.get_dataset_shard("validation").materialize().to_pandas()
    train_y, valid_y = train.pop(TARGET), valid.pop(TARGET)
    dtrain = xgboost.DMatrix(train, label=train_y)
    dvalid = xgboost.DMatrix(valid, label=valid_y)
    evals_log: dict[str, Any] = {}
    booster = xgboost.train(
        config["params"],
        dtrain,
        num_boost_round=config["rounds"],
        evals=[(dtrain, "train"), (dvalid, "validation")],
        evals_result=evals_log,
        verbose_eval=False,
    )
    metrics = {f"{split}-logloss": log["logloss"][-1] for split, log in evals_log.items()}
    with tempfile.TemporaryDirectory() as tmp:  # what RayTrainReportCallback does at the end
        checkpoint = None
        if ray.train.get_context().get_world_rank() == 0:
            booster.save_model(str(Path(tmp, RayTrainReportCallback.CHECKPOINT_NAME)))
            checkpoint = ray.train.Checkpoint.from_directory(tmp)
        ray.train.report(metrics, checkpoint=checkpoint)


def main() -> None:
    """Read, split, train; print the phase times in the lines training.py parses."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--storage", required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--cpus", type=float, default=1)
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--depth", type=int, default=8)
    args = parser.parse_args()

    started = time.monotonic()
    ray.init()
    train, valid = ray.data.read_parquet(args.data).train_test_split(test_size=0.2, seed=0)
    print(f"[floor] data ready in {time.monotonic() - started:.1f} s", flush=True)

    params = {
        "tree_method": "hist", "seed": 0, "nthread": max(1, int(args.cpus)),
        "objective": "binary:logistic", "eval_metric": "logloss", "max_depth": args.depth,
    }  # fmt: skip
    trainer = XGBoostTrainer(
        train_fn_per_worker,
        train_loop_config={"params": params, "rounds": args.rounds},
        scaling_config=ScalingConfig(
            num_workers=args.workers, resources_per_worker={"CPU": args.cpus}
        ),
        run_config=RunConfig(storage_path=args.storage, name=f"floor-{args.workers}w"),
        datasets={"train": train, "validation": valid},
    )
    fit_started = time.monotonic()
    result = trainer.fit()
    print(f"[floor] trained in {time.monotonic() - fit_started:.1f} s", flush=True)
    print(f"[floor] final metrics {result.metrics}", flush=True)


if __name__ == "__main__":
    main()
