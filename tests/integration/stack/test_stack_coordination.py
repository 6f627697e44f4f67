"""`rayline stack up --coordination` end to end: ZooKeeper first, a coordinated manager.

The stack of tests/integration/stack/test_stack.py (same fixture: its own state
dir, ports, databases and bucket on the running services), started with
``--coordination`` and a ZooKeeper on a port of its own: ``stack status`` lists
ZooKeeper, the manager's ``/healthz`` says it coordinates through it and leads, a
head-only cluster it starts appears in ZooKeeper's registry once READY, and
``stack down`` deletes the cluster and stops ZooKeeper with everything else. No
workflow: that path is the plain stack test's.

Run it under the heavy-run lock (it starts a Ray cluster):
``flock /tmp/rayline-heavy.lock uv run pytest tests/integration/stack -m "" -x -q``.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from kazoo.client import KazooClient

from rayline.clusters.client import ClusterManagerClient
from rayline.clusters.schemas import ClusterCreate, ResourceSpec
from rayline.stack.config import load_secrets
from rayline.stack.processes import session_members
from tests.integration.manager import free_port
from tests.integration.stack.test_stack import (
    COMPONENTS,
    StackUnderTest,
    _processes_with,
    stack,
)

__all__ = ["stack"]  # the fixture, shared with test_stack.py

pytestmark = pytest.mark.integration

READY_TIMEOUT = 600  # a loaded 2-core host starts Ray slowly
REGISTRY_TIMEOUT = 30  # the registry thread writes within a second or two; CI hosts are loaded


def _wait_for_znode(zk: KazooClient, path: str) -> None:
    """Wait (on a watch, so no creation is missed) until ``path`` exists."""
    created = threading.Event()
    if zk.exists(path, watch=lambda _event: created.set()) is None:
        assert created.wait(REGISTRY_TIMEOUT), f"{path} absent after {REGISTRY_TIMEOUT} s"


def _leading(manager_url: str, token: str) -> dict[str, Any]:
    """The manager's coordination status once it leads (its election runs in a thread)."""
    deadline = time.monotonic() + REGISTRY_TIMEOUT
    auth = {"Authorization": f"Bearer {token}"}
    while True:
        health = httpx.get(f"{manager_url}/healthz", headers=auth, timeout=10).json()
        coordination: dict[str, Any] = health["coordination"]
        if coordination.get("leader") or time.monotonic() > deadline:
            return coordination
        time.sleep(0.2)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_stack_up_with_coordination_registers_in_zookeeper_and_down_stops_it(
    stack: StackUnderTest,
) -> None:
    zk_port = free_port()
    root = f"/rl-stack-{secrets.token_hex(4)}"  # ZooKeeper's data dir outlives the test
    stack.env.update({"RAYLINE_ZK_PORT": str(zk_port), "RAYLINE_ZOOKEEPER_ROOT": root})
    zk_dir = Path(stack.env["RAYLINE_SERVICES_DIR"]) / "zookeeper"
    pid_file = zk_dir / "zookeeper.pid"
    if pid_file.is_file() and _pid_alive(int(pid_file.read_text())):
        pytest.fail(f"a ZooKeeper started from {zk_dir} runs: `deploy/zookeeper.sh down` first")

    up = stack.rayline("stack", "up", "--coordination")
    assert up.returncode == 0, up.stdout + up.stderr
    status = stack.rayline("stack", "status", "--json")
    rows = {row["name"]: row for row in json.loads(status.stdout)}
    assert rows["zookeeper"]["state"] == "up", rows  # started by the stack
    assert rows["zookeeper"]["url"] == f"127.0.0.1:{zk_port}"
    assert {name: rows[name]["state"] for name in COMPONENTS} == dict.fromkeys(COMPONENTS, "up")
    zk_pid = int(pid_file.read_text())
    manager_pid = stack.pids()["cluster-manager"]

    manager_url = f"http://127.0.0.1:{stack.env['RAYLINE_STACK_MANAGER_PORT']}"
    token = load_secrets(stack.state_dir, create=False).manager_token
    # `stack up` waits for /healthz, not for the election.
    coordination = _leading(manager_url, token.get_secret_value())
    assert coordination["mode"] == "zookeeper" and coordination["hosts"] == f"127.0.0.1:{zk_port}"
    assert coordination["degraded"] is False
    assert coordination["leader"] is True  # the only replica leads

    zk = KazooClient(hosts=f"127.0.0.1:{zk_port}", timeout=10)
    zk.start(timeout=20)
    try:
        member = f"{root}/members/{coordination['identifier']}"
        _wait_for_znode(zk, member)  # made on connect, else by the registry thread
        assert zk.get_children(f"{root}/members") == [coordination["identifier"]]
        with ClusterManagerClient(manager_url, token=token, timeout=70) as client:
            spec = ClusterCreate(name="zk-stack", purpose="training", head=ResourceSpec(cpus=1))
            cluster = client.wait_until_ready(client.create_cluster(spec).id, timeout=READY_TIMEOUT)
        assert cluster.state == "READY"
        entry = f"{root}/clusters/training/{cluster.id}"
        _wait_for_znode(zk, entry)  # the registry thread writes it after READY is stored
        data, znode = zk.get(entry)
        assert json.loads(data)["head_address"] == cluster.head_address
        assert znode.ephemeralOwner == int(coordination["session_id"], 16)
    finally:
        zk.stop()
        zk.close()

    down = stack.rayline("stack", "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert "stopped zookeeper" in down.stdout
    assert not _pid_alive(zk_pid)
    with pytest.raises(OSError):  # nothing answers on ZooKeeper's port
        socket.create_connection(("127.0.0.1", zk_port), timeout=2).close()
    assert session_members(manager_pid) == []
    assert _processes_with(f"RAYLINE_HOME={stack.state_dir / 'home'}") == []
    after = stack.rayline("stack", "status", "--json")
    states = {row["name"]: row["state"] for row in json.loads(after.stdout)}
    assert "zookeeper" not in states or states["zookeeper"] == "down", states
    assert {name: states[name] for name in COMPONENTS} == dict.fromkeys(COMPONENTS, "down")
