"""Warm cluster pools: the shapes kept warm, and which requests match them.

A pool shape is what makes two clusters interchangeable before anybody used
them: purpose, head and worker resources, worker count and runtime env. What a
request sets per use (name, labels, TTL, idle timeout, request id) is applied
when it adopts a pooled cluster, so it is not part of the shape.

The setting (`RAYLINE_POOL`) is either ``training:1,serving:1`` (purpose and
size, each purpose's default shape) or, from the config file, a list of shapes::

    pool:
      - {name: training, purpose: training, size: 1, head: {cpus: 2}}
      - {name: big, purpose: training, size: 1, worker_count: 2, worker: {cpus: 1}}
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import Field, ValidationError

from rayline.clusters.schemas import ClusterCreate, Name, Purpose, ResourceSpec, _Strict

__all__ = [
    "DEFAULT_SHAPES",
    "PoolSettingError",
    "PoolShape",
    "cold_start_reason",
    "match",
    "parse_pool_setting",
]

# What the `rayline_train_and_serve` DAG and `rayline deploy` ask for by default
# (head with 2 logical CPUs, no workers), so the default pools serve the workflow.
DEFAULT_SHAPES: dict[str, dict[str, Any]] = {
    "training": {"head": {"cpus": 2}, "worker_count": 0},
    "serving": {"head": {"cpus": 2}, "worker_count": 0},
}
_SHORT_ITEM = re.compile(r"^\s*(?P<purpose>[a-z]+)\s*:\s*(?P<size>\d+)\s*$")


class PoolSettingError(ValueError):
    """The pool setting cannot be read; the message names the entry and the fix."""


class PoolShape(_Strict):
    """One warm pool: how many fresh clusters of which shape to keep ready."""

    name: Name = Field(description="Pool name, shown as the `pool` field of its clusters.")
    purpose: Purpose
    size: int = Field(default=1, ge=0, le=64, description="Fresh clusters kept warm.")
    head: ResourceSpec = Field(default_factory=ResourceSpec)
    worker: ResourceSpec = Field(default_factory=ResourceSpec)
    worker_count: int = Field(default=0, ge=0, le=64)
    runtime_env: dict[str, Any] = Field(default_factory=dict)

    def matches(self, spec: ClusterCreate) -> bool:
        """Whether a cluster of this shape is interchangeable with what ``spec`` asks."""
        if (spec.purpose, spec.worker_count, spec.head) != (
            self.purpose,
            self.worker_count,
            self.head,
        ):
            return False
        if self.worker_count and spec.worker != self.worker:
            return False  # (worker resources mean nothing without workers)
        return spec.runtime_env == self.runtime_env

    def request(self) -> ClusterCreate:
        """The request a pooled cluster of this shape is started with."""
        return ClusterCreate(
            name=f"pool-{self.name}"[:63],
            purpose=self.purpose,
            head=self.head,
            worker=self.worker,
            worker_count=self.worker_count,
            runtime_env=self.runtime_env,
            labels={"rayline.pool": self.name},
        )


def match(spec: ClusterCreate, shapes: Sequence[PoolShape]) -> PoolShape | None:
    """The first pool whose shape ``spec`` matches, or None (then it starts cold)."""
    return next((shape for shape in shapes if shape.size and shape.matches(spec)), None)


def cold_start_reason(shape: PoolShape | None, *, configured: bool) -> str:
    """The creation event of a cluster that starts cold says why it did."""
    if shape is not None:
        return f"requested; cold start: pool '{shape.name}' has no fresh cluster free"
    if configured:
        return "requested; cold start: no warm pool has this shape"
    return "requested; cold start (no warm pools configured)"


def parse_pool_setting(value: str | Sequence[dict[str, Any]]) -> list[PoolShape]:
    """Read `Settings.pool` into shapes.

    Raises:
        PoolSettingError: an entry is malformed, names an unknown purpose, or two
            pools share a name.
    """
    entries = _short_entries(value) if isinstance(value, str) else [dict(v) for v in value]
    shapes: list[PoolShape] = []
    for index, entry in enumerate(entries):
        entry.setdefault("name", entry.get("purpose"))
        try:
            shapes.append(PoolShape.model_validate(entry))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "entry"
            raise PoolSettingError(
                f"RAYLINE_POOL entry {index + 1} ({entry}): {field}: {first['msg']}; "
                "see `rayline.clusters.pools` for the format"
            ) from None
    names = [shape.name for shape in shapes]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise PoolSettingError(
            f"RAYLINE_POOL names pool(s) {', '.join(duplicates)} twice; give each a unique name"
        )
    return shapes


def _short_entries(value: str) -> list[dict[str, Any]]:
    """``training:1,serving:1`` -> one default-shaped entry per purpose."""
    entries: list[dict[str, Any]] = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        found = _SHORT_ITEM.match(item)
        if found is None or found["purpose"] not in DEFAULT_SHAPES:
            raise PoolSettingError(
                f"RAYLINE_POOL entry {item!r} must look like PURPOSE:SIZE with PURPOSE one of "
                f"{', '.join(DEFAULT_SHAPES)}, e.g. RAYLINE_POOL=training:1,serving:1"
            )
        purpose = found["purpose"]
        entries.append({"purpose": purpose, "size": int(found["size"]), **DEFAULT_SHAPES[purpose]})
    return entries
