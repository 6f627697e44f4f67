"""High-throughput mode: every port inside the leased block, HAProxy kept on loopback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from rayline.clusters.backends.ports import PortBlock
from rayline.serving import image_build
from rayline.serving.high_throughput import (
    high_throughput_env,
    ports_needed,
    write_loopback_wrapper,
)


@pytest.mark.parametrize("replicas", [1, 4])
def test_every_port_is_inside_the_block_and_distinct(replicas: int) -> None:
    block = PortBlock(30000, ports_needed(replicas))
    env = high_throughput_env(block, replicas)
    assert env["RAY_SERVE_ENABLE_HA_PROXY"] == "1"
    ports = [
        int(env[k])
        for k in (
            "RAY_SERVE_HAPROXY_STATS_PORT",
            "RAY_SERVE_HAPROXY_METRICS_PORT",
            "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT",
            "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT",
        )
    ]
    http = range(
        int(env["RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT"]),
        int(env["RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT"]) + 1,
    )
    grpc = range(
        int(env["RAY_SERVE_DIRECT_INGRESS_MIN_GRPC_PORT"]),
        int(env["RAY_SERVE_DIRECT_INGRESS_MAX_GRPC_PORT"]) + 1,
    )
    everything = [*ports, *http, *grpc]
    assert len(set(everything)) == len(everything) == block.count
    assert min(everything) == block.first and max(everything) == block.last
    assert len(http) >= 2 * replicas


def test_a_small_block_is_refused() -> None:
    with pytest.raises(ValueError, match="too few"):
        high_throughput_env(PortBlock(30000, ports_needed(2) - 1), 2)


def test_the_wrapper_moves_wildcard_binds_to_loopback(tmp_path: Path) -> None:
    wrapper = write_loopback_wrapper(tmp_path / "bin")
    text = wrapper.read_text().replace(wrapper.read_text().splitlines()[-1], 'exec true "$@"')
    wrapper.write_text(text)  # run the rewrite, not HAProxy
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        "frontend prometheus\n    bind :9101\n"
        "frontend http_frontend\n    bind 127.0.0.1:8000\n"
        "listen stats\n  bind *:8404\n"
    )
    subprocess.run([str(wrapper), "-db", "-f", str(config), "-sf", "12"], check=True)
    binds = [line.strip() for line in config.read_text().splitlines() if "bind" in line]
    assert binds == ["bind 127.0.0.1:9101", "bind 127.0.0.1:8000", "bind 127.0.0.1:8404"]


def test_failed_builds_forget_the_from_image() -> None:
    tail: list[str] = []
    layers: list[str] = []
    for line in [
        "Step 1/3 : FROM rayline-serving-base:x",
        " ---> 111111111111",
        "Step 2/3 : COPY model /opt/rayline/model",
        " ---> 222222222222",
        "Step 3/3 : RUN python -c 'import x'",
        " ---> Running in 333333333333",
        " ---> 444444444444",
    ]:
        image_build._note_layer(line, tail, layers)
        tail.append(line)
    assert layers == ["222222222222", "444444444444"]
