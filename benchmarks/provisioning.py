"""Provisioning latency of the Cluster Manager against a bare `ray start --head`.

Part 1, alternating in one run: (a) baseline, Ray's own `ray start --head --block`
on free ports (kept on loopback), then poll the dashboard until the cluster is
READY by the manager's definition: GCS healthy, job API answering, the node alive
(the node registers 3-4 s after the dashboard first answers, and a job cannot run
before it does); (b) ours, `POST /v1/clusters` (head only) on a running manager, then long-poll
until READY (GCS healthy, the node alive, job API answering). Medians and the
ratio ours/baseline are printed; the target is <= 1.10. (c) in the same loop, the
same POST of the warm pool's shape (head with 2 CPUs), adopted from the pool: POST
-> READY (target <= 1 s), beside cold (b); before each pooled run the pool has
refilled, so no Ray start overlaps a timed one.

Part 2: p50/p99 latency of `GET /v1/clusters` with 200 cluster records under 16
concurrent clients.

    uv run python benchmarks/provisioning.py [--runs 5] [--requests 800]
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import insert

from rayline.clusters.backends.dashboard import DashboardClient
from rayline.clusters.backends.errors import BackendUnavailableError
from rayline.clusters.client import ClusterManagerClient
from rayline.clusters.ray_auth import write_new_token
from rayline.clusters.schemas import ClusterCreate, ResourceSpec
from rayline.metadata.db import create_engine_for
from rayline.metadata.enums import ClusterPurpose, ClusterState
from rayline.metadata.models import Cluster

console = Console()
app = typer.Typer(add_completion=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_http(url: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(url)


# `ray start` as a user runs it (Ray's whole CLI), except that loopback stays loopback:
# Ray's CLI rewrites 127.0.0.1 to the host's routable IP (ray-project/ray#26293), and
# nothing here may bind another address. Our backend applies the same one-line fix.
_BARE_RAY_START = (
    "import sys\n"
    "from ray._private import services\n"
    "resolve = services.resolve_ip_for_localhost\n"
    "services.resolve_ip_for_localhost = "
    "lambda host: '127.0.0.1' if host in ('127.0.0.1', 'localhost') else resolve(host)\n"
    "from ray.scripts.scripts import main\n"
    "sys.argv = ['ray', *sys.argv[1:]]\n"
    "sys.exit(main())\n"
)


def ready(dashboard_url: str, token: str) -> bool:
    """Our READY definition: GCS healthy, the job API answering, the node alive."""
    with DashboardClient(dashboard_url, timeout=3, token=token) as dashboard:
        if not (dashboard.gcs_healthy()[0] and dashboard.job_api_ok()[0]):
            return False
        try:
            return any(node.alive for node in dashboard.nodes())
        except BackendUnavailableError:
            return False


def baseline_once(workdir: Path) -> float:
    """Seconds from a bare `ray start --head` to READY (same checks as the manager's)."""
    temp = Path(tempfile.mkdtemp(prefix="b", dir="/tmp"))
    gcs, dash = free_port(), free_port()
    command = [
        sys.executable, "-c", _BARE_RAY_START, "start", "--head", "--block",
        "--node-ip-address=127.0.0.1", f"--port={gcs}", "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dash}", f"--temp-dir={temp}", "--num-cpus=1",
        "--disable-usage-stats",
    ]  # fmt: skip
    # The Ray switches our backend sets too: no usage stats, token auth with a token
    # file of its own, drivers and the dashboard kept on loopback.
    token_path = temp / "ray-auth-token"
    token = write_new_token(token_path)
    env = {
        **os.environ,
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(token_path),
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    }
    started = time.monotonic()
    with (workdir / "baseline.log").open("ab") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        deadline = started + 180
        while not ready(f"http://127.0.0.1:{dash}", token):
            if time.monotonic() > deadline:
                raise TimeoutError(f"bare ray start not ready after 180 s; see {workdir}")
            time.sleep(0.1)
        return time.monotonic() - started
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the whole group: nothing of it outlives the run
        process.wait()
        shutil.rmtree(temp, ignore_errors=True)


def pooled_once(client: ClusterManagerClient, run: int) -> float:
    """Seconds from `POST /v1/clusters` to READY for a request adopted from the warm pool."""
    wait_pool_full(client)
    spec = ClusterCreate(
        name=f"pooled-{run}", purpose=ClusterPurpose.TRAINING, head=ResourceSpec(cpus=2)
    )
    started = time.monotonic()
    cluster = client.create_cluster(spec)
    if cluster.state != ClusterState.READY:
        cluster = client.wait_until_ready(cluster.id, timeout=180)
    elapsed = time.monotonic() - started
    assert cluster.pool == "training", f"run {run} did not come from the pool: {cluster}"
    client.delete_cluster(cluster.id)
    client.wait_until(cluster.id, state=ClusterState.TERMINATED, timeout=120)
    wait_pool_full(client)  # the refill must not overlap the next timed run
    return elapsed


def wait_pool_full(client: ClusterManagerClient, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not client.list_clusters(state=ClusterState.POOLED).data:
        if time.monotonic() > deadline:
            raise TimeoutError("the warm pool did not fill")
        time.sleep(0.2)


def ours_once(client: ClusterManagerClient, run: int) -> float:
    """Seconds from `POST /v1/clusters` to READY; the cluster is deleted afterwards."""
    spec = ClusterCreate(
        name=f"bench-{run}", purpose=ClusterPurpose.TRAINING, head=ResourceSpec(cpus=1)
    )
    started = time.monotonic()
    cluster = client.create_cluster(spec)
    client.wait_until_ready(cluster.id, timeout=180)
    elapsed = time.monotonic() - started
    client.delete_cluster(cluster.id)
    client.wait_until(cluster.id, state=ClusterState.TERMINATED, timeout=120)
    return elapsed


@contextmanager
def manager(workdir: Path) -> Iterator[tuple[ClusterManagerClient, str]]:
    """A Cluster Manager process on SQLite in `workdir`."""
    token = secrets.token_urlsafe(32)
    port = free_port()
    database_url = f"sqlite:///{workdir / 'meta.db'}"
    env = {
        **os.environ,
        "RAYLINE_HOME": str(workdir / "home"),
        "RAYLINE_DATABASE_URL": database_url,
        "RAYLINE_API_TOKEN": token,
        "RAYLINE_API_PORT": str(port),
        "RAYLINE_MAX_LIVE_CLUSTERS": "1000",
        # One warm spare of the workflow's training shape; the cold runs ask for
        # another shape (head with 1 CPU), so they always start Ray.
        "RAYLINE_POOL": "training:1",
        "RAYLINE_POOL_REFILL_DELAY_SECONDS": "0",
    }
    with (workdir / "manager.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "rayline", "cluster-manager", "serve", "--log-level", "warning"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", time.monotonic() + 60)
        with ClusterManagerClient(f"http://127.0.0.1:{port}", token=token, timeout=70) as client:
            yield client, database_url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def seed_records(database_url: str, count: int) -> None:
    """Insert `count` ended cluster records, as a long-running manager accumulates."""
    now = datetime.now(UTC)
    rows = [
        {
            "id": f"rc-seed{i:08d}", "name": f"seed-{i}", "purpose": ClusterPurpose.TRAINING,
            "state": ClusterState.TERMINATED, "state_reason": "seeded", "backend": "local",
            "spec": {"worker_count": 0}, "labels": {"team": "bench"}, "nodes": [],
            "backend_handle": {}, "ttl_seconds": 3600, "created_at": now, "updated_at": now,
        }
        for i in range(count)
    ]  # fmt: skip
    engine = create_engine_for(database_url)
    with engine.begin() as connection:
        connection.execute(insert(Cluster), rows)
    engine.dispose()


def list_latency(client: ClusterManagerClient, requests: int, concurrency: int) -> list[float]:
    def one(_: int) -> float:
        started = time.perf_counter()
        page = client.list_clusters()
        assert page.count >= 200
        return time.perf_counter() - started

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(one, range(requests)))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@app.command()
def main(
    runs: int = typer.Option(5, min=1, help="Provisioning runs of each kind."),
    requests: int = typer.Option(800, min=16, help="GET /v1/clusters requests in part 2."),
    concurrency: int = typer.Option(16, min=1),
) -> None:
    """Run both parts and print medians, ratio and list latency."""
    workdir = Path(tempfile.mkdtemp(prefix="rayline-bench-"))
    baseline: list[float] = []
    ours: list[float] = []
    pooled: list[float] = []
    try:
        with manager(workdir) as (client, database_url):
            with Progress(console=console) as progress:
                task = progress.add_task("provisioning (alternating)", total=3 * runs)
                wait_pool_full(client)
                for run in range(runs):
                    baseline.append(baseline_once(workdir))
                    progress.advance(task)
                    ours.append(ours_once(client, run))
                    progress.advance(task)
                    pooled.append(pooled_once(client, run))
                    progress.advance(task)
            seed_records(database_url, max(0, 200 - len(client.list_clusters().data)))
            list_latency(client, concurrency, concurrency)  # warm up connections
            latencies = list_latency(client, requests, concurrency)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    table = Table(title=f"POST to READY, head only, {runs} runs each, alternating")
    table.add_column("what")
    table.add_column("median s", justify="right")
    table.add_column("min s", justify="right")
    table.add_column("max s", justify="right")
    rows = (
        ("bare ray start + health wait", baseline),
        ("Cluster Manager, cold", ours),
        ("Cluster Manager, from the warm pool", pooled),
    )
    for name, values in rows:
        table.add_row(
            name, f"{statistics.median(values):.2f}", f"{min(values):.2f}", f"{max(values):.2f}"
        )
    console.print(table)
    ratio = statistics.median(ours) / statistics.median(baseline)
    console.print(f"ratio ours/baseline (median): [bold]{ratio:.3f}[/] (target <= 1.10)")
    warm = statistics.median(pooled)
    console.print(
        f"pool POST -> READY (median): [bold]{warm * 1000:.0f} ms[/] (target <= 1 s); "
        f"ratio pooled/cold {warm / statistics.median(ours):.3f}, "
        f"pooled/baseline {warm / statistics.median(baseline):.3f}"
    )
    console.print(
        f"GET /v1/clusters, 200 records, {concurrency} clients, {requests} requests: "
        f"p50 {percentile(latencies, 0.50) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    app()
