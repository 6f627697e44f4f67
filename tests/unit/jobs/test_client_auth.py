"""JobClient sends the cluster's token with every call and gets it from the manager."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from rayline.clusters.schemas import ClusterCredentials, ClusterPublic
from rayline.jobs.client import JobApiError, JobClient

TOKEN = "a" * 64


class FakeManager:
    def cluster_credentials(self, cluster_id: str) -> ClusterCredentials:
        return ClusterCredentials(cluster_id=cluster_id, ray_auth_token=TOKEN)


def cluster(job_api_url: str | None) -> ClusterPublic:
    now = datetime.now(UTC)
    return ClusterPublic(
        id="c-1",
        name="c",
        purpose="training",
        state="READY" if job_api_url else "PROVISIONING",
        backend="local",
        head_address="127.0.0.1:6379",
        job_api_url=job_api_url,
        worker_count=0,
        ttl_seconds=60,
        created_at=now,
        updated_at=now,
    )


def test_for_cluster_carries_the_token_to_rays_client(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[dict[str, Any]] = []

    class FakeSdk:
        def __init__(self, address: str, **kwargs: Any) -> None:
            made.append({"address": address, **kwargs})

    monkeypatch.setattr("ray.job_submission.JobSubmissionClient", FakeSdk)
    client = JobClient.for_cluster(cluster("http://127.0.0.1:8265"), FakeManager())  # type: ignore[arg-type]
    assert client.ray_address == "127.0.0.1:6379"
    client.sdk  # noqa: B018
    assert made == [
        {"address": "http://127.0.0.1:8265", "headers": {"Authorization": f"Bearer {TOKEN}"}}
    ]
    assert TOKEN not in repr(client)


def test_a_cluster_without_a_job_api_yet_is_refused() -> None:
    with pytest.raises(JobApiError, match="no job API yet"):
        JobClient.for_cluster(cluster(None), FakeManager())  # type: ignore[arg-type]
