"""Leader fail-over time of the Cluster Manager on ZooKeeper.

Two manager replicas share one database and one ZooKeeper (a private server
started with deploy/zookeeper.sh). Each run SIGKILLs the leader (no goodbye, so
ZooKeeper must expire its session) and measures the time until the other replica
reports that it leads with its lifecycle manager running (reconciled, reaping);
the killed replica is then restarted as the follower for the next run.

The baseline is the configured session timeout, the bound ZooKeeper gives: the
ratio ours/baseline is below 1 when fail-over beats it. A graceful stop (SIGTERM,
the session is closed at once) is measured too, for comparison.

    source /var/tmp/rl-dev/services.env   # Postgres; without it a SQLite file is shared
    flock /tmp/rayline-heavy.lock uv run python benchmarks/failover.py [--runs 10]
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, make_url, text

console = Console()
app = typer.Typer(add_completion=False)
SCRIPT = Path(__file__).resolve().parents[1] / "deploy" / "zookeeper.sh"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Replica:
    name: str
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['RAYLINE_API_PORT']}"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "rayline", "cluster-manager", "serve"],
                env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 90
        while self.health() is None:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"replica {self.name} did not start; see {self.log}")
            time.sleep(0.2)

    def health(self) -> dict[str, object] | None:
        try:
            body: dict[str, object] = httpx.get(f"{self.url}/healthz", timeout=2).json()
        except httpx.HTTPError:
            return None
        return body

    def leads(self) -> bool:
        body = self.health()
        coordination = body.get("coordination") if body else None
        return isinstance(coordination, dict) and coordination.get("leader") is True

    def stop(self, sig: signal.Signals) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=60)


@contextmanager
def zookeeper(workdir: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "RAYLINE_SERVICES_DIR": str(workdir), "RAYLINE_ZK_PORT": str(port)}
    subprocess.run([str(SCRIPT), "up"], env=env, check=True)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(SCRIPT), "down"], env=env, check=False)


@contextmanager
def database(workdir: Path) -> Iterator[str]:
    admin = os.environ.get("RAYLINE_PG_URL")
    if not admin:
        yield f"sqlite:///{workdir / 'meta.db'}"
        return
    name = f"rayline_failover_{secrets.token_hex(4)}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


def wait_for_leader(replica: Replica, started: float, limit: float) -> float:
    while not replica.leads():
        if time.monotonic() - started > limit:
            raise SystemExit(f"{replica.name} did not take over in {limit:g}s; see {replica.log}")
        time.sleep(0.02)
    return time.monotonic() - started


def fail_over(replicas: list[Replica], sig: signal.Signals, runs: int, limit: float) -> list[float]:
    times = []
    for run in range(runs):
        leader = next(r for r in replicas if r.leads())
        follower = next(r for r in replicas if r is not leader)
        started = time.monotonic()
        leader.stop(sig)
        times.append(wait_for_leader(follower, started, limit))
        console.print(f"  {sig.name} run {run + 1}: {follower.name} leads after {times[-1]:.2f}s")
        leader.start()
    return times


@app.command()
def main(
    runs: int = typer.Option(10, help="Fail-overs per kind."),
    session_timeout: float = typer.Option(4.0, help="ZooKeeper session timeout, seconds."),
) -> None:
    """Kill the leader `runs` times; print median and max time to a new acting leader."""
    with tempfile.TemporaryDirectory(prefix="rl-failover-") as tmp:
        workdir = Path(tmp)
        with zookeeper(workdir) as hosts, database(workdir) as database_url:
            base = {
                **os.environ,
                "RAYLINE_HOME": str(workdir / "home"),
                "RAYLINE_DATABASE_URL": database_url,
                "RAYLINE_API_TOKEN": secrets.token_urlsafe(32),
                "RAYLINE_REAPER_INTERVAL_SECONDS": "1",
                "RAYLINE_ZOOKEEPER_HOSTS": hosts,
                "RAYLINE_ZOOKEEPER_SESSION_TIMEOUT_SECONDS": str(session_timeout),
            }
            replicas = [
                Replica(n, {**base, "RAYLINE_API_PORT": str(free_port())}, workdir / f"{n}.log")
                for n in ("a", "b")
            ]
            try:
                for replica in replicas:
                    replica.start()
                wait_for_leader(replicas[0], time.monotonic(), 30)
                limit = session_timeout * 3 + 30
                killed = fail_over(replicas, signal.SIGKILL, runs, limit)
                graceful = fail_over(replicas, signal.SIGTERM, runs, limit)
            finally:
                for replica in replicas:
                    replica.stop(signal.SIGTERM)
    table = Table(title=f"Leader fail-over, {runs} runs each (kill → new leader acting)")
    for column in ("case", "median s", "max s", "baseline s", "ours/baseline"):
        table.add_column(column, justify="right" if column != "case" else "left")
    for case, times in (
        ("SIGKILL (session expires)", killed),
        ("SIGTERM (session closed)", graceful),
    ):
        median = statistics.median(times)
        table.add_row(
            case, f"{median:.2f}", f"{max(times):.2f}", f"{session_timeout:.2f}",
            f"{median / session_timeout:.2f}",
        )  # fmt: skip
    console.print(table)
    console.print(
        f"baseline: the ZooKeeper session timeout ({session_timeout:g}s) bounds fail-over"
    )


if __name__ == "__main__":
    app()
