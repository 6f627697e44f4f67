"""In-memory stand-ins for the task context, the Cluster Manager hook and the Ray job hook."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from rayline.clusters.errors import ClusterFailedError, ClusterNotFoundError, NotFoundError
from rayline.clusters.schemas import (
    ClusterCreate,
    ClusterCredentials,
    ClusterPublic,
    ClusterState,
    ServicePublic,
    ServicesPublic,
)
from rayline.orchestration.hooks.ray_jobs import RayJobState

DAG_ID = "test_dag"
RUN_ID = "manual__2026-01-02T03:04:05.678901+00:00"
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


class FakeTI:
    """The parts of a RuntimeTaskInstance the operators and callbacks use."""

    def __init__(self, task_id: str, *, try_number: int = 1, states: dict[str, str] | None = None):
        self.dag_id = DAG_ID
        self.run_id = RUN_ID
        self.task_id = task_id
        self.try_number = try_number
        self.map_index = -1
        self.xcom: dict[tuple[str, str], Any] = {}
        self.states = states or {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[(self.task_id, key)] = value

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        return self.xcom.get((task_ids, key))

    def get_task_states(
        self, *, dag_id: str, task_ids: list[str], run_ids: list[str]
    ) -> dict[str, dict[str, str]]:
        assert dag_id == self.dag_id and run_ids == [self.run_id]
        return {self.run_id: {t: self.states[t] for t in task_ids if t in self.states}}


def context_for(ti: FakeTI, **extra: Any) -> dict[str, Any]:
    return {"ti": ti, "run_id": ti.run_id, "params": {}, **extra}


def make_cluster(
    cluster_id: str = "rc-1",
    *,
    state: ClusterState = ClusterState.READY,
    labels: Mapping[str, str] | None = None,
    request_id: str | None = None,
    port: int = 8265,
    purpose: str = "training",
) -> ClusterPublic:
    return ClusterPublic(
        id=cluster_id,
        name=f"name-{cluster_id}",
        purpose=purpose,
        state=state,
        backend="local",
        head_address=f"127.0.0.1:{port - 1}",
        dashboard_url=f"http://127.0.0.1:{port}",
        job_api_url=f"http://127.0.0.1:{port}" if state == ClusterState.READY else None,
        worker_count=0,
        labels=dict(labels or {}),
        ttl_seconds=3600,
        request_id=request_id,
        created_at=NOW,
        updated_at=NOW,
    )


class FakeClusterManagerHook:
    """A Cluster Manager in a dict: idempotent create, READY at once unless told otherwise."""

    def __init__(self) -> None:
        self.clusters: dict[str, ClusterPublic] = {}
        self.specs: list[ClusterCreate] = []
        self.deleted: list[str] = []
        self.never_ready: set[str] = set()
        self.endpoints: list[ServicePublic] = []

    def add(self, cluster: ClusterPublic) -> ClusterPublic:
        self.clusters[cluster.id] = cluster
        return cluster

    def create_cluster(self, spec: ClusterCreate) -> ClusterPublic:
        for cluster in self.clusters.values():
            if cluster.request_id == spec.request_id:
                return cluster
        self.specs.append(spec)
        number = len(self.specs)
        while f"rc-{number}" in self.clusters:
            number += 1
        cluster_id = f"rc-{number}"
        return self.add(
            make_cluster(
                cluster_id,
                state=ClusterState.PENDING,
                labels=spec.labels,
                request_id=spec.request_id,
                port=8265 + len(self.specs),
                purpose=spec.purpose.value,
            )
        )

    def get_cluster(self, cluster_id: str) -> ClusterPublic:
        if cluster_id not in self.clusters:
            raise ClusterNotFoundError(cluster_id)
        return self.clusters[cluster_id]

    def token_of(self, cluster_id: str) -> str:
        return f"token-of-{cluster_id}"

    def get_cluster_credentials(self, cluster_id: str) -> ClusterCredentials:
        return ClusterCredentials(cluster_id=cluster_id, ray_auth_token=self.token_of(cluster_id))

    def wait_until_ready(
        self, cluster_id: str, *, timeout: float, on_poll: Any = None
    ) -> ClusterPublic:
        cluster = self.get_cluster(cluster_id)
        if cluster_id in self.never_ready or cluster.state.is_terminal():
            failed = cluster.model_copy(update={"state": ClusterState.FAILED, "reason": "boom"})
            self.clusters[cluster_id] = failed
            raise ClusterFailedError(cluster_id, state="FAILED", reason="boom", wanted="READY")
        ready = cluster.model_copy(
            update={"state": ClusterState.READY, "job_api_url": cluster.dashboard_url}
        )
        if on_poll is not None:
            on_poll(ready)
        return self.add(ready)

    def wait_until_terminated(self, cluster_id: str, *, timeout: float) -> ClusterPublic:
        return self.get_cluster(cluster_id)

    def delete_cluster(self, cluster_id: str) -> ClusterPublic | None:
        self.deleted.append(cluster_id)
        if cluster_id not in self.clusters:
            return None
        cluster = self.clusters[cluster_id]
        if not cluster.state.is_terminal():
            cluster = cluster.model_copy(update={"state": ClusterState.TERMINATED})
            self.clusters[cluster_id] = cluster
        return cluster

    def live_clusters(self, labels: Mapping[str, str]) -> list[ClusterPublic]:
        return [
            c
            for c in self.clusters.values()
            if not c.state.is_terminal() and all(c.labels.get(k) == v for k, v in labels.items())
        ]

    def live_endpoints(self, model: str) -> ServicesPublic:
        found = [e for e in self.endpoints if e.model_name == model]
        if not found:
            raise NotFoundError(f"no live endpoint serves {model!r}")
        return ServicesPublic(data=found, count=len(found))


class FakeRayJobHook:
    """Ray's job API in a dict; a submitted job takes ``new_job_status`` at once."""

    def __init__(self, address: str = "http://127.0.0.1:8265") -> None:
        self.address = address
        self.jobs: dict[str, RayJobState] = {}
        self.logs: dict[str, str] = {}
        self.submitted: list[dict[str, Any]] = []
        self.stopped: list[str] = []
        self.new_job_status = "RUNNING"
        self.new_job_logs = ""

    def add(self, submission_id: str, status: str, logs: str = "", message: str = "") -> None:
        # Ray's clock in milliseconds: terminal jobs ran 12.5 s.
        ended = 1_700_000_012_500 if status in ("SUCCEEDED", "FAILED", "STOPPED") else None
        self.jobs[submission_id] = RayJobState(
            submission_id, status, message, start_time=1_700_000_000_000, end_time=ended
        )
        self.logs[submission_id] = logs

    def submit_job(self, **kwargs: Any) -> str:
        self.submitted.append(kwargs)
        self.add(kwargs["submission_id"], self.new_job_status, self.new_job_logs)
        return str(kwargs["submission_id"])

    def get_job_state(self, submission_id: str) -> RayJobState | None:
        return self.jobs.get(submission_id)

    def get_job_logs(self, submission_id: str) -> str:
        return self.logs.get(submission_id, "")

    def stop_job(self, submission_id: str) -> bool:
        self.stopped.append(submission_id)
        return True
