"""Platform overhead of a Rayline training job against plain in-process XGBoost.

One run, three measurements on the same generated Parquet file:

(a) in process: ``pandas.read_parquet`` + ``xgboost.train`` with ``nthread=2``;
(b) our job, 1 worker x 2 CPUs, the lean path: ``JobClient.submit`` on a READY
    cluster until the job has read the data with pyarrow and trained with
    ``xgboost.train`` in its own driver process (no Ray Data, no Ray Train),
    evaluated, published the version and registered it;
(c) our job, 2 workers x 1 CPU: Ray Data reads, Ray Train trains data-parallel;
(d), (e) Ray's floor, 1 and 2 workers: ``benchmarks/ray_train_floor.py``, Ray's
    documented XGBoostTrainer recipe with none of our code, submitted to the same
    cluster through the same Job Submission API and followed the same way.

(f) the iris job: ``sklearn:iris``, a random forest, submission -> version
    registered (target <= 10 s), on the same cluster.

Overhead = (b) - (a), printed with the ratio (b)/(a); the target is (b) <= (a) + 8 s.
(c) - (e) is what Rayline itself adds on top of Ray's own machinery (spec
checks, hashing, artifacts, lineage).
The cluster comes from a Cluster Manager on SQLite with a ``file://`` artifact
store, all in a temp dir (one node with 3 logical CPUs runs every job); its
provisioning is not counted (see ``benchmarks/provisioning.py``). Logical CPUs
are not cores: on a 2-core host (c) cannot be faster than (b).

    uv run python benchmarks/training.py [--rows 200000] [--rounds 500] [--no-floor] [--no-multi]
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import typer
import xgboost
from rich.console import Console
from rich.table import Table

from rayline.clusters.client import ClusterManagerClient
from rayline.clusters.schemas import ClusterCreate, ClusterPublic, Purpose, ResourceSpec
from rayline.config import Settings
from rayline.jobs.client import JobClient
from rayline.jobs.output import AnyResult
from rayline.jobs.requests import TrainRequest
from rayline.jobs.results import TrainResult
from rayline.training.frameworks import LoopConfig
from rayline.training.frameworks.xgboost_trainer import booster_params
from rayline.training.spec import load_spec

IRIS = "iris job, sklearn random forest, 150 rows"
FLOOR_SCRIPT = Path(__file__).with_name("ray_train_floor.py")

console = Console(width=130)
app = typer.Typer(add_completion=False)
PHASES = {
    "data": re.compile(r"data ready in ([\d.]+) s"),  # both ours and the floor print these
    "train": re.compile(r"trained in ([\d.]+) s"),
    "publish": re.compile(r"evaluated, published and registered in ([\d.]+) s"),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_dataset(path: Path, rows: int, features: int) -> None:
    """A binary classification table: a noisy linear rule over the features."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, features)).astype(np.float32)
    weights = rng.normal(size=features)
    y = (x @ weights + rng.normal(scale=2.0, size=rows) > 0).astype(np.int64)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(features)])
    frame["label"] = y
    frame.to_parquet(path, index=False)


def in_process(path: Path, rounds: int, depth: int) -> float:
    """Seconds for read + DMatrix + train, as a plain script would do it."""
    loop = LoopConfig(
        features=[], target="label", task="classification", num_classes=2,
        hyperparameters={"max_depth": depth}, checkpoint_every=rounds, seed=0,
        cpus_per_worker=2,
    )  # fmt: skip
    started = time.monotonic()
    frame = pd.read_parquet(path)
    labels = frame.pop("label").to_numpy()
    xgboost.train(
        booster_params(loop),
        xgboost.DMatrix(frame.to_numpy(), label=labels),
        num_boost_round=rounds,
    )
    return time.monotonic() - started


@contextmanager
def manager(workdir: Path) -> Iterator[tuple[ClusterManagerClient, str]]:
    """A Cluster Manager on SQLite in ``workdir``; yields its client and database URL."""
    token, port = secrets.token_urlsafe(32), free_port()
    database_url = f"sqlite:///{workdir / 'meta.db'}"
    env = {
        **os.environ,
        "RAYLINE_HOME": str(workdir / "home"),
        "RAYLINE_DATABASE_URL": database_url,
        "RAYLINE_API_TOKEN": token,
        "RAYLINE_API_PORT": str(port),
        "RAYLINE_LOCAL_PORT_RANGE_START": "18000",
        "RAYLINE_LOCAL_PORT_RANGE_END": "20000",
    }
    with (workdir / "manager.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "rayline", "cluster-manager", "serve", "--log-level", "warning"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the Cluster Manager did not start; see manager.log")
            time.sleep(0.2)
        with ClusterManagerClient(f"http://127.0.0.1:{port}", token=token, timeout=70) as client:
            yield client, database_url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


def cluster(client: ClusterManagerClient) -> ClusterPublic:
    """One node with 3 logical CPUs: fits 1 worker x 2 CPUs and 2 workers x 1 CPU."""
    spec = ClusterCreate(
        name="bench-training", purpose=Purpose.TRAINING, head=ResourceSpec(cpus=3),
        ttl_seconds=3600,
    )  # fmt: skip
    return client.wait_until_ready(client.create_cluster(spec).id, timeout=900)


def job(
    jobs: JobClient, settings: Settings, path: Path, workers: int, cpus: float, rounds: int,
    depth: int,
) -> tuple[float, dict[str, float]]:  # fmt: skip
    """Seconds from submission to the job's end, and the job's own phase times."""
    spec = {
        "spec_version": 1, "name": f"bench-{workers}w", "dataset": path.as_uri(),
        "target": "label", "task": "classification", "framework": "xgboost",
        "workers": workers, "cpus_per_worker": cpus, "checkpoint_every": rounds,
        "hyperparameters": {"num_boost_round": rounds, "max_depth": depth},
    }  # fmt: skip
    return timed_job(jobs, settings, spec)


def timed_job(
    jobs: JobClient, settings: Settings, spec: dict[str, object]
) -> tuple[float, dict[str, float]]:
    """Seconds from submitting ``spec`` to the job's end (version registered), and its phases."""
    started = time.monotonic()
    submission = jobs.submit(TrainRequest(spec=load_spec(spec)), settings=settings)
    outcome = jobs.follow(submission, TrainResult, timeout=1800)
    elapsed = time.monotonic() - started
    if not outcome.succeeded:
        raise RuntimeError(f"benchmark job failed: {outcome.describe_failure()}")
    return elapsed, phases_of(outcome.logs)


def floor_job(
    jobs: JobClient, workdir: Path, path: Path, workers: int, cpus: float, rounds: int,
    depth: int,
) -> tuple[float, dict[str, float]]:  # fmt: skip
    """Seconds from submission to the end of Ray's own recipe (no Rayline code in the job)."""
    from ray.job_submission import JobSubmissionClient

    entrypoint = " ".join([
        sys.executable, str(FLOOR_SCRIPT), "--data", str(path),
        "--storage", str(workdir / "ray-results"), "--workers", str(workers),
        "--cpus", str(cpus), "--rounds", str(rounds), "--depth", str(depth),
    ])  # fmt: skip
    started = time.monotonic()
    sdk = JobSubmissionClient(jobs.job_api_url, headers=jobs.headers)
    submission = sdk.submit_job(entrypoint=entrypoint)
    outcome = jobs.follow(submission, AnyResult, timeout=1800)
    elapsed = time.monotonic() - started
    if outcome.status != "SUCCEEDED":
        raise RuntimeError(f"floor job {outcome.status}: {outcome.logs[-2000:]}")
    return elapsed, phases_of(outcome.logs)


def phases_of(logs: str) -> dict[str, float]:
    """The phase times a job printed (the floor prints no publish phase)."""
    return {k: float(m.group(1)) for k, rx in PHASES.items() if (m := rx.search(logs))}


@app.command()
def main(
    rows: int = typer.Option(200_000, min=1000, help="Rows of the generated dataset."),
    features: int = typer.Option(32, min=2),
    rounds: int = typer.Option(500, min=1, help="Boosting rounds (~20 s in process here)."),
    depth: int = typer.Option(8, min=1, help="max_depth."),
    floor: bool = typer.Option(True, help="Also run Ray's own recipe, (d) and (e)."),
    multi: bool = typer.Option(True, help="Also run the 2-worker Ray Train job, (c) and (e)."),
) -> None:
    """Measure (a) to (e) once each and print times, overhead and scaling."""
    workdir = Path(tempfile.mkdtemp(prefix="rayline-bench-train-"))
    try:
        data = workdir / "data.parquet"
        make_dataset(data, rows, features)
        console.print(
            f"dataset: {rows} rows x {features} features, {data.stat().st_size >> 20} MiB"
        )
        # Before any Ray process exists: a cluster that has just started keeps the
        # cores busy for a while (dashboard, agents) and would slow the baseline.
        baseline = in_process(data, rounds, depth)
        console.print(f"in process: {baseline:.1f} s")
        with manager(workdir) as (client, database_url):
            settings = Settings(
                home=workdir / "home", database_url=database_url,
                artifact_uri=(workdir / "artifacts").as_uri(), data_roots=str(workdir),
            )  # fmt: skip
            ready = cluster(client)
            jobs = JobClient.for_cluster(ready, client)
            runs: dict[str, tuple[float, dict[str, float]]] = {}
            try:
                # Interleaved, so a machine that slows down over the run hurts both.
                for workers, cpus in ((1, 2.0), (2, 1.0))[: 2 if multi else 1]:
                    if floor:
                        name = f"Ray's recipe, {workers} worker(s) x {cpus:g} CPU"
                        runs[name] = floor_job(jobs, workdir, data, workers, cpus, rounds, depth)
                        console.print(f"{name}: {runs[name][0]:.1f} s {runs[name][1]}")
                    name = f"our job, {workers} worker(s) x {cpus:g} CPU"
                    runs[name] = job(jobs, settings, data, workers, cpus, rounds, depth)
                    console.print(f"{name}: {runs[name][0]:.1f} s {runs[name][1]}")
                iris = {
                    "spec_version": 1, "name": "bench-iris", "dataset": "sklearn:iris",
                    "target": "target", "task": "classification", "framework": "sklearn",
                    "hyperparameters": {"estimator": "random_forest", "n_estimators": 100},
                }  # fmt: skip
                runs[IRIS] = timed_job(jobs, settings, iris)
                console.print(f"{IRIS}: {runs[IRIS][0]:.1f} s {runs[IRIS][1]}")
            finally:  # a failed job must not leave the cluster behind
                client.delete_cluster(ready.id)
                client.wait_until(ready.id, state="TERMINATED", timeout=180)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(baseline, runs, rounds)


def report(baseline: float, runs: dict[str, tuple[float, dict[str, float]]], rounds: int) -> None:
    """The table, the overhead against the target and against Ray's floor, the scaling."""
    table = Table(title=f"XGBoost, {rounds} rounds, same data")
    columns = ("run", "wall s", "job start+end s", "data s", "train s", "eval+publish s",
               "overhead s")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="right" if column != "run" else "left")
    table.add_row("in process, nthread=2", f"{baseline:.1f}", "-", "-", "-", "-", "-")
    for name, (wall, phases) in runs.items():
        # Submission, job supervisor and driver start, Ray connection, exit and last poll.
        rest = wall - sum(phases.values()) if {"data", "train"} <= phases.keys() else float("nan")
        table.add_row(
            name, f"{wall:.1f}", f"{rest:.1f}",
            *(f"{phases[k]:.1f}" if k in phases else "-" for k in ("data", "train", "publish")),
            f"{wall - baseline:+.1f}" if name != IRIS else "-",
        )  # fmt: skip
    console.print(table)
    one = runs["our job, 1 worker(s) x 2 CPU"]
    two = runs.get("our job, 2 worker(s) x 1 CPU")
    for workers, cpus, ours in ((1, 2, one), (2, 1, two)):
        recipe = runs.get(f"Ray's recipe, {workers} worker(s) x {cpus} CPU")
        if recipe is not None and ours is not None:
            console.print(
                f"{workers} worker(s): ours {ours[0]:.1f} s, Ray's recipe {recipe[0]:.1f} s: ratio "
                f"[bold]{ours[0] / recipe[0]:.2f}[/], Rayline adds {ours[0] - recipe[0]:+.1f} s"
            )
    overhead = one[0] - baseline
    verdict = "[green]met[/]" if overhead <= 8 else "[red]missed[/]"
    console.print(
        f"lean path, 1 worker: {one[0]:.1f} s vs in process {baseline:.1f} s: ratio "
        f"[bold]{one[0] / baseline:.2f}[/], [bold]{overhead:+.1f} s[/] "
        f"({verdict}, target <= in process + 8 s)"
    )
    iris = runs[IRIS][0]
    verdict = "[green]met[/]" if iris <= 10 else "[red]missed[/]"
    console.print(
        f"iris job, submit -> registered: [bold]{iris:.1f} s[/] ({verdict}, target <= 10 s)"
    )
    if two is not None:
        console.print(
            f"1 -> 2 workers: {one[0] / two[0]:.2f}x wall, "
            f"{one[1].get('train', float('nan')) / two[1].get('train', float('nan')):.2f}x "
            "training (the 2 workers run Ray Train and share the same two cores)"
        )


if __name__ == "__main__":
    app()
