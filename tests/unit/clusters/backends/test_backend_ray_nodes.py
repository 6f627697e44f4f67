"""Port plans, ``ray start`` command lines and environments of local Ray nodes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rayline.clusters.backends.base import NodeResources
from rayline.clusters.backends.errors import UnsupportedRequestError
from rayline.clusters.backends.ports import PortBlock
from rayline.clusters.backends.ray_nodes import (
    CLUSTER_ID_ENV,
    LAUNCHER,
    TEMP_DIR_ENV,
    head_command,
    plan_ports,
    ports_needed,
    ray_environment,
    worker_command,
)

TEMP = Path("/tmp/rl/abc123")
IP = "127.0.0.1"
IP_PATTERN = re.compile(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b")


def flags(argv: list[str]) -> dict[str, str]:
    """``--name=value`` arguments as a dict (bare flags map to "")."""
    out = {}
    for arg in argv:
        if arg.startswith("--"):
            name, _, value = arg.partition("=")
            out[name] = value
    return out


def test_plan_gives_every_port_once_and_disjoint_worker_ranges() -> None:
    block = PortBlock(30000, ports_needed(3, 50))
    plan = plan_ports(block, 3, 50)
    singles = [*plan.head.model_dump().values()]
    ranges = []
    for node in plan.nodes:
        values = node.model_dump()
        ranges.append(range(values.pop("min_worker"), values.pop("max_worker") + 1))
        singles += values.values()
    every = singles + [p for r in ranges for p in r]
    assert len(every) == len(set(every)) == block.count
    assert min(every) == block.first and max(every) == block.last
    assert all(len(r) == 50 for r in ranges)


def test_plan_refuses_a_block_too_small() -> None:
    with pytest.raises(ValueError, match="too small"):
        plan_ports(PortBlock(30000, ports_needed(2, 50) - 1), 2, 50)


def head_argv(resources: NodeResources | None = None) -> list[str]:
    plan = plan_ports(PortBlock(30000, ports_needed(1, 20)), 1, 20)
    return head_command(
        python="/venv/bin/python",
        ip=IP,
        temp_dir=TEMP,
        head=plan.head,
        node=plan.nodes[0],
        resources=resources or NodeResources(cpus=2, memory_bytes=2**30, custom={"a": 1.5}),
    )


def test_head_command_sets_every_port_address_and_limit() -> None:
    argv = head_argv()
    assert argv[:3] == ["/venv/bin/python", str(LAUNCHER), "start"]
    got = flags(argv)
    assert {"--head", "--block", "--disable-usage-stats"} <= got.keys()
    assert got["--node-ip-address"] == IP
    assert got["--dashboard-host"] == IP
    assert got["--include-dashboard"] == "true"
    assert got["--temp-dir"] == str(TEMP)
    assert got["--port"] == "30000"
    assert got["--dashboard-port"] == "30001"
    for port_flag in (
        "--ray-client-server-port",
        "--node-manager-port",
        "--object-manager-port",
        "--metrics-export-port",
        "--dashboard-agent-listen-port",
        "--dashboard-agent-grpc-port",
        "--runtime-env-agent-port",
        "--min-worker-port",
        "--max-worker-port",
    ):
        assert int(got[port_flag]) > 30000, port_flag
    assert got["--num-cpus"] == "2"
    assert got["--num-gpus"] == "0"
    assert got["--memory"] == str(2**30)
    assert json.loads(got["--resources"]) == {"a": 1.5}


def test_worker_command_joins_the_head_on_loopback() -> None:
    plan = plan_ports(PortBlock(30000, ports_needed(2, 20)), 2, 20)
    argv = worker_command(
        python="/venv/bin/python",
        ip=IP,
        temp_dir=TEMP,
        gcs_address=f"{IP}:{plan.head.gcs}",
        node=plan.nodes[1],
        resources=NodeResources(cpus=1),
        after_nodes=1,
        dashboard_url=f"http://{IP}:{plan.head.dashboard}",
    )
    # The launcher's own options come before Ray's subcommand.
    assert argv[2:5] == [
        f"--rayline-dashboard=http://{IP}:30001",
        "--rayline-wait-nodes=1",
        "start",
    ]
    got = flags(argv)
    assert "--head" not in got and "--block" in got
    assert got["--address"] == f"{IP}:30000"
    assert got["--node-ip-address"] == IP
    assert got["--include-log-monitor"] == "false"
    assert got["--node-manager-port"] == str(plan.nodes[1].node_manager)
    assert got["--min-worker-port"] == str(plan.nodes[1].min_worker)
    assert "--memory" not in got and "--resources" not in got
    # Head-only flags would make `ray start` abort on a worker.
    assert not {"--port", "--include-dashboard", "--dashboard-port"} & got.keys()


def test_start_slots_come_before_rays_subcommand() -> None:
    plan = plan_ports(PortBlock(30000, ports_needed(1, 20)), 1, 20)
    argv = head_command(
        python="p",
        ip=IP,
        temp_dir=TEMP,
        head=plan.head,
        node=plan.nodes[0],
        resources=NodeResources(),
        start_slots=(Path("/state/start-slots"), 2),
    )
    assert argv[2:4] == ["--rayline-slots=/state/start-slots:2", "start"]


def test_no_address_other_than_loopback_appears() -> None:
    plan = plan_ports(PortBlock(30000, ports_needed(2, 20)), 2, 20)
    worker = worker_command(
        python="p",
        ip=IP,
        temp_dir=TEMP,
        gcs_address=f"{IP}:1",
        node=plan.nodes[1],
        resources=NodeResources(),
    )
    for arg in head_argv() + worker:
        assert set(IP_PATTERN.findall(arg)) <= {IP}, arg


@pytest.mark.parametrize(
    ("resources", "match"),
    [
        (NodeResources(cpus=0.5), "whole"),
        (NodeResources(custom={"CPU": 2}), "CPU, GPU or memory"),
    ],
)
def test_unsupported_resources_are_refused(resources: NodeResources, match: str) -> None:
    with pytest.raises(UnsupportedRequestError, match=match):
        head_argv(resources)


def test_environment_marks_processes_and_keeps_ray_offline() -> None:
    plan = plan_ports(PortBlock(30000, ports_needed(1, 20)), 1, 20)
    base = {"PATH": "/usr/bin", "RAY_ADDRESS": "192.0.2.1:6379", "HOME": "/root"}
    env = ray_environment(
        base, python="/venv/bin/python", ip=IP, temp_dir=TEMP, cluster_id="c1", head=plan.head
    )
    assert env[TEMP_DIR_ENV] == str(TEMP)
    assert env[CLUSTER_ID_ENV] == "c1"
    assert env["RAY_USAGE_STATS_ENABLED"] == "0"
    assert env["RAY_ENABLE_UV_RUN_RUNTIME_ENV"] == "0"
    assert "RAY_AUTH_MODE" not in env  # no token file given: Ray's own default
    assert env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0"
    assert env["PATH"] == "/venv/bin:/usr/bin"
    assert env["DASHBOARD_METRIC_PORT"] == str(plan.head.dashboard_metrics)
    assert env["AUTOSCALER_METRIC_PORT"] == str(plan.head.autoscaler_metrics)
    assert "RAY_ADDRESS" not in env
    assert env["HOME"] == "/root"


def test_worker_environment_has_no_head_ports_and_routable_ip_keeps_ray_default() -> None:
    env = ray_environment({}, python="/p/python", ip="192.0.2.3", temp_dir=TEMP, cluster_id="c")
    assert "DASHBOARD_METRIC_PORT" not in env
    assert "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER" not in env


def test_environment_turns_token_auth_on_with_the_cluster_token_file() -> None:
    base = {"RAY_AUTH_MODE": "disabled", "RAY_AUTH_TOKEN": "other", "RAY_AUTH_TOKEN_PATH": "/x"}
    env = ray_environment(
        base,
        python="/p/python",
        ip=IP,
        temp_dir=TEMP,
        cluster_id="c",
        auth_token_path=Path("/state/c/ray-auth-token"),
    )
    assert env["RAY_AUTH_MODE"] == "token"
    assert env["RAY_AUTH_TOKEN_PATH"] == "/state/c/ray-auth-token"
    assert "RAY_AUTH_TOKEN" not in env  # another cluster's token never passes on


def test_environment_keeps_only_allow_listed_variables() -> None:
    secrets = {
        "RAYLINE_API_TOKEN": "manager-token",
        "RAYLINE_DATABASE_URL": "postgresql://rayline:pw@127.0.0.1/rayline",
        "RAYLINE_S3_ACCESS_KEY_ID": "AKIA",
        "RAYLINE_S3_SECRET_ACCESS_KEY": "s3-secret",
        "DOCKER_HOST": "unix:///run/docker.sock",
        "AWS_SECRET_ACCESS_KEY": "aws",
        "MLFLOW_TRACKING_PASSWORD": "ml",
        "http_proxy": "http://user:pw@proxy:3128",
        "AIRFLOW_CONN_RAYLINE_DEFAULT": "rayline://:tok@h",
    }
    kept = {
        "HOME": "/home/u",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TMPDIR": "/tmp",
        "VIRTUAL_ENV": "/venv",
        "PYTHONPATH": "/src",
        "RAYLINE_HOME": "/home/u/.rayline",
        "RAY_grpc_keepalive_time_ms": "1000",
    }
    env = ray_environment(
        {**secrets, **kept, "PATH": "/usr/bin"},
        python="/venv/bin/python",
        ip=IP,
        temp_dir=TEMP,
        cluster_id="c",
    )
    assert not secrets.keys() & env.keys()
    assert not any(value in str(env) for value in secrets.values())
    assert {k: env[k] for k in kept} == kept
