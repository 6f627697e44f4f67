"""Cluster requests from operator arguments, and the XCom value of a cluster."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException
from pydantic import ValidationError as PydanticValidationError

from rayline.clusters.schemas import ClusterCreate, ClusterPublic
from rayline.orchestration import ids
from rayline.orchestration.operators.rendering import rendered_mapping
from rayline.training.errors import InvalidSpecError
from rayline.training.resources import training_cluster_shape
from rayline.training.spec import load_spec

__all__ = ["build_cluster_spec", "cluster_summary", "with_training_shape"]


def build_cluster_spec(
    raw: Mapping[str, Any] | str,
    *,
    key: ids.TaskKey,
    name: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> ClusterCreate:
    """Turn a rendered operator argument into a validated, idempotent cluster request.

    The name defaults to one derived from the task try, the request id always is
    (so only this try of this task can ask for this cluster), and the run labels
    are added so a teardown can find every cluster the task made.

    Args:
        raw: ClusterCreate fields as a mapping or a JSON string (templates render
            to strings unless the DAG renders native objects).
        key: the task try asking.
        name: the cluster name; derived from ``key`` when None.
        labels: labels that win over the run labels (a replacement cluster keeps
            those of the cluster it replaces, so the same teardown finds it).

    Raises:
        AirflowException: the spec is not valid JSON or not a valid cluster request;
            the message names the fields.
    """
    fields = rendered_mapping(raw)
    merged_labels = {
        **dict(fields.get("labels") or {}),
        **ids.run_labels(key),
        **dict(labels or {}),
    }
    try:
        return ClusterCreate.model_validate(
            {
                **fields,
                "name": name or fields.get("name") or ids.cluster_name(key),
                "labels": merged_labels,
                "request_id": ids.cluster_request_id(key),
            }
        )
    except PydanticValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise AirflowException(f"invalid cluster spec: {problems}; fix these fields") from exc


def with_training_shape(
    raw: Mapping[str, Any] | str, training_spec: Mapping[str, Any] | str
) -> dict[str, Any]:
    """Cluster request fields whose node shape fits a training spec.

    ``head``, ``worker`` and ``worker_count`` come from
    `rayline.training.resources.training_cluster_shape` unless ``raw`` sets them.

    Raises:
        AirflowFailException: the training spec is invalid (no retry can help).
    """
    try:
        spec = load_spec(rendered_mapping(training_spec))
    except InvalidSpecError as err:
        raise AirflowFailException(f"{err}; fix the run's training param") from None
    return {**training_cluster_shape(spec).request_fields(), **rendered_mapping(raw)}


def cluster_summary(cluster: ClusterPublic, spec: ClusterCreate | None = None) -> dict[str, Any]:
    """The XCom value of a cluster: ids, addresses, labels and (to make a twin) its spec."""
    summary: dict[str, Any] = {
        "cluster_id": cluster.id,
        "name": cluster.name,
        "purpose": cluster.purpose.value,
        "state": cluster.state.value,
        "head_address": cluster.head_address,
        "job_api_url": cluster.job_api_url,
        "dashboard_url": cluster.dashboard_url,
        "labels": dict(cluster.labels),
    }
    if spec is not None:
        summary["spec"] = spec.model_dump(mode="json", exclude={"name", "request_id"})
    return summary
