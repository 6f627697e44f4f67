"""Prometheus ``file_sd`` target files written from the Cluster Manager's registry.

Prometheus (``deploy/prometheus/prometheus.yml``) reads every file of one directory:

* ``manager.json``: the manager itself (``/metrics``, bearer token);
* ``cluster-<id>.json``: one per live cluster, its nodes' Ray metrics export ports
  (plus the head's dashboard and autoscaler metrics ports), labelled with the
  cluster's id, name and purpose; deleted when the cluster ends;
* ``serving.json``: every registered serving endpoint's ``/metrics``, labelled with
  model, version, deployment and cluster.

Files are rewritten atomically (temporary file, then rename) whenever a cluster
changes state, a cluster's handle is stored, or an endpoint is registered or
removed, and only when their content changed. A cluster's file is written when its
handle is stored, while it is still PROVISIONING, so it exists before any client can
see the cluster READY; it is removed when the cluster starts ending. A directory
that cannot be written never stops the manager: one warning is logged and the next
successful write logs that discovery works again.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rayline.clusters.service import ClusterService
from rayline.config import Settings
from rayline.metadata.enums import ClusterState
from rayline.metadata.models import Cluster, ServiceEndpoint

__all__ = [
    "CLUSTER_PREFIX",
    "MANAGER_FILE",
    "SERVING_FILE",
    "PrometheusTargetWriter",
    "TargetGroup",
    "cluster_groups",
    "serving_groups",
    "watch",
]

log = logging.getLogger(__name__)

TargetGroup = dict[str, Any]  # {"targets": [...], "labels": {...}}: one file_sd entry

MANAGER_FILE = "manager.json"
SERVING_FILE = "serving.json"
CLUSTER_PREFIX = "cluster-"
_LIVE = {
    ClusterState.PENDING,
    ClusterState.PROVISIONING,
    ClusterState.READY,
    ClusterState.POOLED,
    ClusterState.UNHEALTHY,
}


def cluster_groups(cluster: Cluster) -> list[TargetGroup]:
    """One target group per metrics port of a cluster (none before it has a handle)."""
    targets: dict[str, str] = (cluster.backend_handle or {}).get("metrics_targets") or {}
    base = {
        "cluster_id": cluster.id,
        "cluster_name": cluster.name,
        "purpose": str(cluster.purpose),
    }
    return [
        {"targets": [address], "labels": {**base, "node": name}}
        for name, address in sorted(targets.items())
    ]


def serving_groups(endpoints: Iterable[ServiceEndpoint]) -> list[TargetGroup]:
    """One target group per registered endpoint; ``/metrics`` under the endpoint's path."""
    groups = []
    for endpoint in sorted(endpoints, key=lambda e: e.url):
        url = urlsplit(endpoint.url)
        if not url.netloc:
            continue
        labels = {
            "__scheme__": url.scheme or "http",
            "__metrics_path__": url.path.rstrip("/") + "/metrics",
            "model": endpoint.model_name,
            "version": str(endpoint.model_version),
        }
        if endpoint.cluster_id:
            labels["cluster_id"] = endpoint.cluster_id
        if endpoint.deployment_id:
            labels["deployment_id"] = endpoint.deployment_id
        groups.append({"targets": [url.netloc], "labels": labels})
    return groups


class PrometheusTargetWriter:
    """Keeps a ``file_sd`` directory in step with the manager's clusters and endpoints.

    Args:
        directory: Where the target files go (created when missing).
        manager_target: The manager's own ``host:port``.
    """

    def __init__(self, directory: Path, manager_target: str) -> None:
        self.directory = directory
        self.manager_target = manager_target
        self._lock = threading.Lock()
        self._written: dict[str, str] = {}
        self._failing = False

    def write(self, clusters: Iterable[Cluster], endpoints: Iterable[ServiceEndpoint]) -> bool:
        """Rewrite the files that changed and remove those of ended clusters.

        Returns:
            False when the directory could not be written (warned about once).
        """
        wanted: dict[str, list[TargetGroup]] = {
            MANAGER_FILE: [
                {"targets": [self.manager_target], "labels": {"component": "cluster-manager"}}
            ],
            SERVING_FILE: serving_groups(endpoints),
        }
        for cluster in clusters:
            if ClusterState(cluster.state) in _LIVE:
                groups = cluster_groups(cluster)
                if groups:
                    wanted[f"{CLUSTER_PREFIX}{cluster.id}.json"] = groups
        with self._lock:
            try:
                self._sync(wanted)
            except OSError as exc:
                if not self._failing:
                    log.warning(
                        "Prometheus targets: cannot write %s (%s); the manager keeps working "
                        "but Prometheus will not see new or ended clusters until it is "
                        "writable (set RAYLINE_PROMETHEUS_SD_DIR to a writable directory)",
                        self.directory,
                        exc,
                    )
                    self._failing = True
                return False
        if self._failing:
            log.info("Prometheus targets: writing to %s works again", self.directory)
            self._failing = False
        return True

    def _sync(self, wanted: dict[str, list[TargetGroup]]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for name, groups in wanted.items():
            text = json.dumps(groups, indent=2, sort_keys=True) + "\n"
            if self._written.get(name) != text or not (self.directory / name).is_file():
                _atomic_write(self.directory / name, text)
                self._written[name] = text
        for path in self.directory.glob(f"{CLUSTER_PREFIX}*.json"):
            if path.name not in wanted:
                path.unlink(missing_ok=True)
                self._written.pop(path.name, None)


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def watch(service: ClusterService, settings: Settings) -> PrometheusTargetWriter:
    """Write the target files now and after every state change or endpoint change."""
    writer = PrometheusTargetWriter(
        settings.prometheus_sd_dir, f"{settings.api_host}:{settings.api_port}"
    )

    # Read and write under one lock: two changes refreshing at once must not let the
    # older snapshot be written last (it would bring back an ended cluster's file).
    refreshing = threading.Lock()

    def refresh() -> None:
        try:
            with refreshing:
                live = [c for s in _LIVE for c in service.list_clusters(state=s, limit=100_000)]
                writer.write(live, service.list_services())
        except Exception:  # discovery must never break the manager's own work
            log.exception("Prometheus targets: refresh failed; retrying on the next change")

    service.change_listeners.append(refresh)
    refresh()
    return writer
