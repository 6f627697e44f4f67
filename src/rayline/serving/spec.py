"""What to deploy and how: the model reference and the serving spec.

A model reference is ``NAME`` (latest version), ``NAME:VERSION`` or
``NAME@ALIAS``. The serving spec holds everything about *how* a version is
served (replicas, autoscaling bounds, batching, limits); it travels to the
container or the Serve app as JSON.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rayline.serving.errors import InvalidModelRefError

__all__ = ["ModelRef", "ServingSpec", "parse_model_ref"]

_NAME = r"[A-Za-z0-9][-A-Za-z0-9_.]{0,127}"
_REF_RE = re.compile(rf"^(?P<name>{_NAME})(?::(?P<version>[^:@]*)|@(?P<alias>[^:@]*))?$")
_ALIAS_RE = re.compile(r"^[A-Za-z0-9][-A-Za-z0-9_.]{0,127}$")


@dataclass(frozen=True)
class ModelRef:
    """A parsed model reference: a name plus at most one of version and alias."""

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:{self.version}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return self.name


def parse_model_ref(ref: str) -> ModelRef:
    """Parse ``NAME``, ``NAME:VERSION`` or ``NAME@ALIAS``.

    Raises:
        InvalidModelRefError: The text is none of those.

    Example:
        >>> parse_model_ref("iris:3")
        ModelRef(name='iris', version=3, alias=None)
    """
    match = _REF_RE.match(ref.strip())
    if match is None:
        raise InvalidModelRefError(
            ref, "names hold letters, digits, '.', '_' and '-', then one ':VERSION' or '@ALIAS'"
        )
    version, alias = match["version"], match["alias"]
    if version is not None:
        if not version.isdigit() or int(version) < 1:
            raise InvalidModelRefError(ref, f"version {version!r} is not a positive integer")
        return ModelRef(match["name"], version=int(version))
    if alias is not None:
        if not _ALIAS_RE.match(alias):
            raise InvalidModelRefError(ref, f"alias {alias!r} is empty or has odd characters")
        return ModelRef(match["name"], alias=alias)
    return ModelRef(match["name"])


class ServingSpec(BaseModel):
    """How a model version is served; every field has a small-machine default.

    Attributes:
        num_replicas: Fixed number of replicas (ignored when ``max_replicas`` is set).
        min_replicas: Autoscaling lower bound (with ``max_replicas``).
        max_replicas: Autoscaling upper bound; setting it turns autoscaling on.
        target_ongoing_requests: Autoscaling target of in-flight requests per replica.
        max_ongoing_requests: In-flight requests one replica accepts; high enough
            for batches to fill.
        max_batch_size: Rows predicted in one model call (dynamic batching).
        batch_wait_timeout_s: How long a batch waits for more rows.
        replica_cpus: Logical CPUs reserved per replica.
        ray_cpus: Logical CPUs of the Ray node inside a container.
        graceful_shutdown_timeout_s: How long a stopping replica may finish its
            in-flight requests.
        max_body_bytes: Larger request bodies are refused with HTTP 413 (at most 64 MiB).
        max_rows: Requests with more rows are refused with HTTP 413 (at most 1,000,000).
        high_throughput: In model containers, put HAProxy in front of the replicas
            instead of Serve's Python proxy (Ray's high-throughput mode, see
            :mod:`rayline.serving.high_throughput`); several times the requests
            per second on small models. Serve on a shared Ray cluster keeps the
            cluster's proxy.
        access_log: Log every request (Serve's access log); off by default, the
            Prometheus metrics count requests, and a log line per request costs
            a good share of a small model's serving time.
        container_memory_mib: Memory limit of a model container (its tmpfs and
            Ray's shared-memory object store count against it; one replica of a
            small model uses about 1.2 GiB).
        container_cpus: CPU limit of a model container; ``None`` means
            ``ray_cpus`` (both at most the Docker engine's CPUs).
        container_pids: Most processes and threads a model container may run
            (Ray's processes are thread-heavy: about 350 with one replica).
        container_tmp_mib: Size of the container's writable ``/tmp`` (Ray's
            session dir and logs live there; the rest of its file system is
            read-only).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_replicas: int = Field(default=1, ge=1, le=64)
    min_replicas: int | None = Field(default=None, ge=0, le=64)
    max_replicas: int | None = Field(default=None, ge=1, le=64)
    target_ongoing_requests: float = Field(default=32, gt=0)
    max_ongoing_requests: int = Field(default=256, ge=1, le=100_000)
    max_batch_size: int = Field(default=64, ge=1, le=100_000)
    batch_wait_timeout_s: float = Field(default=0.002, ge=0, le=10)
    replica_cpus: float = Field(default=0.5, ge=0, le=1024)
    ray_cpus: int = Field(default=2, ge=1, le=1024)
    graceful_shutdown_timeout_s: float = Field(default=20, ge=0, le=3600)
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    max_rows: int = Field(default=10_000, ge=1, le=1_000_000)
    high_throughput: bool = True
    access_log: bool = False
    container_memory_mib: int = Field(default=2048, ge=512, le=1024 * 1024)
    container_cpus: float | None = Field(default=None, ge=0.1, le=1024)
    container_pids: int = Field(default=1024, ge=128, le=65_536)
    container_tmp_mib: int = Field(default=512, ge=64, le=64 * 1024)

    @model_validator(mode="after")
    def _check_bounds(self) -> ServingSpec:
        if self.min_replicas is not None and self.max_replicas is None:
            raise ValueError("min_replicas needs max_replicas (that turns autoscaling on)")
        if (
            self.max_replicas is not None
            and self.min_replicas is not None
            and self.min_replicas > self.max_replicas
        ):
            raise ValueError(
                f"min_replicas ({self.min_replicas}) is above max_replicas ({self.max_replicas})"
            )
        if self.container_tmp_mib >= self.container_memory_mib:
            raise ValueError(
                f"container_tmp_mib ({self.container_tmp_mib}) must be below "
                f"container_memory_mib ({self.container_memory_mib}): the tmpfs is memory"
            )
        return self

    def logging_config(self) -> dict[str, Any]:
        """Serve's logging config for the replicas (and, in containers, the proxy)."""
        return {"enable_access_log": self.access_log}

    @property
    def replica_slots(self) -> int:
        """The most replicas this spec can run at once."""
        return self.max_replicas if self.max_replicas is not None else self.num_replicas

    @property
    def autoscaling(self) -> bool:
        """True when the replica count follows the load."""
        return self.max_replicas is not None

    def deployment_options(self) -> dict[str, Any]:
        """Keyword arguments of ``serve.deployment`` / ``Deployment.options``."""
        options: dict[str, Any] = {
            "max_ongoing_requests": self.max_ongoing_requests,
            "graceful_shutdown_timeout_s": self.graceful_shutdown_timeout_s,
            "ray_actor_options": {"num_cpus": self.replica_cpus},
            "logging_config": self.logging_config(),
        }
        if self.autoscaling:
            options["autoscaling_config"] = {
                "min_replicas": self.min_replicas if self.min_replicas is not None else 1,
                "max_replicas": self.max_replicas,
                "target_ongoing_requests": self.target_ongoing_requests,
            }
        else:
            options["num_replicas"] = self.num_replicas
        return options
