"""Real ZooKeeper (deploy/zookeeper.sh, a private instance) and two real manager replicas."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from kazoo.client import KazooClient
from sqlalchemy import URL

from tests.integration.clusters.leaks import temp_base_env
from tests.integration.manager import ManagerProcess, cleanup_clusters, free_port

SCRIPT = Path(__file__).resolve().parents[3] / "deploy" / "zookeeper.sh"
SESSION_TIMEOUT = 4.0  # seconds: fail-over waits at most about this long
READY_TIMEOUT = 600  # seconds: a loaded 2-core host starts Ray slowly


@dataclass
class ZooKeeper:
    """One ZooKeeper server of our own, started and stopped by deploy/zookeeper.sh."""

    state_dir: Path
    port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _script(self, command: str) -> None:
        env = {**os.environ, "RAYLINE_SERVICES_DIR": str(self.state_dir)}
        env["RAYLINE_ZK_PORT"] = str(self.port)
        subprocess.run([str(SCRIPT), command], env=env, check=True, timeout=90)

    def up(self) -> None:
        self._script("up")

    def down(self) -> None:
        self._script("down")

    @contextmanager
    def client(self) -> Iterator[KazooClient]:
        client = KazooClient(hosts=self.address, timeout=10)
        client.start(timeout=20)
        try:
            yield client
        finally:
            client.stop()
            client.close()


def start_zookeeper(state_dir: Path) -> ZooKeeper:
    if not Path("/usr/share/java/zookeeper.jar").is_file():
        pytest.fail("Debian's zookeeper is not installed: run `deploy/zookeeper.sh install`")
    zk = ZooKeeper(state_dir=state_dir, port=free_port())
    zk.up()
    return zk


@pytest.fixture(scope="session")
def zookeeper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZooKeeper]:
    """A ZooKeeper server for this test session."""
    zk = start_zookeeper(tmp_path_factory.mktemp("zk"))
    try:
        yield zk
    finally:
        zk.down()


@pytest.fixture
def zk_client(zookeeper: ZooKeeper) -> Iterator[KazooClient]:
    """A plain kazoo client, to look at znodes from the outside."""
    with zookeeper.client() as client:
        yield client


@dataclass
class Replicas:
    """Manager replicas of one test: one database, one ZooKeeper root, one home."""

    start: Callable[[str], ManagerProcess]
    root: str
    env: dict[str, str]


def health(manager: ManagerProcess) -> dict[str, Any]:
    """The replica's /healthz body, with the details only the token shows."""
    auth = {"Authorization": f"Bearer {manager.token}"}
    body: dict[str, Any] = httpx.get(f"{manager.url}/healthz", headers=auth, timeout=10).json()
    return body


def wait_until(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def wait_for_quota(quota: int, *managers: ManagerProcess) -> None:
    """Wait until every replica has applied ``max_live_clusters = quota`` from ZooKeeper."""
    for manager in managers:
        wait_until(
            f"{manager.url} to apply max_live_clusters={quota}",
            lambda m=manager: (
                health(m)["coordination"]["effective_config"]["max_live_clusters"] == quota
            ),
        )


def leader_of(*managers: ManagerProcess) -> ManagerProcess | None:
    """The one replica that says it leads, or None while there is none (or two)."""
    leading = [m for m in managers if m.process and m.process.poll() is None and _leads(m)]
    return leading[0] if len(leading) == 1 else None


def _leads(manager: ManagerProcess) -> bool:
    try:
        return bool(health(manager)["coordination"]["leader"])
    except httpx.HTTPError:
        return False


def make_replicas(
    zk_address: str, pg_url: URL, tmp_path: Path, **settings: str
) -> Iterator[Replicas]:
    token = secrets.token_urlsafe(32)
    root = f"/rl-test-{secrets.token_hex(4)}"
    env = {
        **os.environ,
        "RAYLINE_HOME": str(tmp_path / "home"),  # shared: port leases, token
        **temp_base_env(),
        "RAYLINE_DATABASE_URL": pg_url.render_as_string(hide_password=False),
        "RAYLINE_API_TOKEN": token,
        "RAYLINE_REAPER_INTERVAL_SECONDS": "1",
        # A dead cluster fails at once (its processes are gone); a live one whose
        # dashboard misses a 3 s probe on a loaded host must not be failed and killed.
        "RAYLINE_UNHEALTHY_GRACE_SECONDS": "30",
        "RAYLINE_PROVISION_TIMEOUT_SECONDS": "600",
        "RAYLINE_ZOOKEEPER_HOSTS": zk_address,
        "RAYLINE_ZOOKEEPER_ROOT": root,
        "RAYLINE_ZOOKEEPER_SESSION_TIMEOUT_SECONDS": str(SESSION_TIMEOUT),
        **{f"RAYLINE_{k.upper()}": v for k, v in settings.items()},
    }
    started: list[ManagerProcess] = []

    def start(name: str) -> ManagerProcess:
        port = free_port()
        manager = ManagerProcess(
            env={**env, "RAYLINE_API_PORT": str(port)},
            port=port,
            log=tmp_path / f"manager-{name}.log",
            token=token,
        )
        manager.start()
        started.append(manager)
        return manager

    try:
        yield Replicas(start=start, root=root, env=env)
    finally:
        live = [m for m in started if m.process is not None and m.process.poll() is None]
        if live:
            try:
                cleanup_clusters(live[-1])
            except Exception as exc:  # still stop the processes below
                print(f"cleanup through {live[-1].url} failed: {exc}")
        for manager in started:
            for client in manager.clients:
                client.close()
            manager.kill(signal.SIGTERM)


@pytest.fixture
def replicas(zookeeper: ZooKeeper, fresh_pg_url: URL, tmp_path: Path) -> Iterator[Replicas]:
    """Start manager replicas sharing one fresh Postgres database and ZooKeeper root."""
    yield from make_replicas(zookeeper.address, fresh_pg_url, tmp_path)


def rayline_config(replicas: Replicas, *args: str) -> Any:
    """Run `rayline config ...` against the replicas' ZooKeeper root; returns its JSON."""
    result = subprocess.run(
        ["rayline", "config", *args], env=replicas.env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
