"""Updates without downtime, a failing update, rollback, and serving without Docker.

A client thread keeps sending requests the whole time, looking the endpoint up
through the Cluster Manager the way a real client does; not one may fail.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from rayline.clusters.client import ClusterManagerClient
from rayline.clusters.errors import NotFoundError
from rayline.metadata import DeploymentMode, DeploymentStatus
from rayline.storage import publish_version
from tests.integration.serving.conftest import ServingEnv, post_predict, wait_for
from tests.unit.serving.model_factory import iris_rows

pytestmark = pytest.mark.integration

LOOKUP_EVERY_SECONDS = 0.5


@dataclass
class Traffic:
    """What the client thread saw."""

    ok: int = 0
    failures: list[str] = field(default_factory=list)
    versions: Counter[int] = field(default_factory=Counter)
    order: list[int] = field(default_factory=list)


@pytest.fixture
def traffic(serving_env: ServingEnv) -> Iterator[Any]:
    """Start a steady stream of requests to a model; stop it when the test ends."""
    threads: list[tuple[threading.Thread, threading.Event]] = []

    def start(model: str) -> Traffic:
        seen = Traffic()
        stop = threading.Event()
        thread = threading.Thread(
            target=_stream, args=(serving_env, model, seen, stop), daemon=True
        )
        thread.start()
        threads.append((thread, stop))
        wait_for(lambda: seen.ok >= 5, timeout=60, what="the first answers")
        return seen

    yield start
    for thread, stop in threads:
        stop.set()
        thread.join(timeout=30)


def _stream(env: ServingEnv, model: str, seen: Traffic, stop: threading.Event) -> None:
    payload = {"instances": iris_rows(2, seed=3).tolist()}
    url, looked_up = "", 0.0
    with (
        ClusterManagerClient(env.manager.url, token=env.manager.token) as manager,
        httpx.Client(timeout=30) as http,
    ):
        while not stop.is_set():
            try:
                if time.monotonic() - looked_up > LOOKUP_EVERY_SECONDS:
                    url = manager.live_endpoints(model).data[0].url
                    looked_up = time.monotonic()
                response = http.post(f"{url}/v1/models/{model}:predict", json=payload)
                if response.status_code != 200:
                    seen.failures.append(f"HTTP {response.status_code}: {response.text[:200]}")
                    continue
                version = response.json()["version"]
                seen.ok += 1
                seen.versions[version] += 1
                if not seen.order or seen.order[-1] != version:
                    seen.order.append(version)
            except (httpx.HTTPError, NotFoundError) as err:
                seen.failures.append(f"{type(err).__name__}: {err}")
            time.sleep(0.02)


def _settle(seen: Traffic, seconds: float = 3.0) -> None:
    """Let the stream run on for a while after a switch (old servers are gone by then)."""
    before = seen.ok
    wait_for(lambda: seen.ok > before + 20, timeout=60, what="more answers")
    time.sleep(seconds)


def test_update_switches_without_a_failed_request_then_rolls_back(
    serving_env: ServingEnv, traffic: Any
) -> None:
    name = serving_env.model_name("rolling")
    serving_env.publish(name, variant=0)
    first = serving_env.deploy("--model", f"{name}:1")
    seen = traffic(name)

    serving_env.publish(name, variant=1)
    second = serving_env.deploy("--model", name)  # the latest: version 2
    _settle(seen)
    assert second["version"] == 2 and second["port"] != first["port"]
    assert seen.failures == [], seen.failures[:5]
    assert seen.order == [1, 2], seen.order
    old = serving_env.deployment(first["deployment_id"])
    assert old.status == DeploymentStatus.STOPPED
    assert serving_env.containers(deployment=first["deployment_id"]) == []
    assert [s.url for s in serving_env.client.live_endpoints(name).data] == [second["url"]]

    back = serving_env.deploy("--rollback", name)
    _settle(seen)
    assert back["version"] == 1 and back["deployment_id"] != first["deployment_id"]
    assert seen.failures == [], seen.failures[:5]
    assert seen.order == [1, 2, 1], seen.order
    assert serving_env.deployment(second["deployment_id"]).status == DeploymentStatus.STOPPED
    assert [s.model_version for s in serving_env.client.live_endpoints(name).data] == [1]
    print(f"requests answered: {seen.ok}, by version: {dict(seen.versions)}")


def test_a_failing_new_version_leaves_the_old_one_serving(
    serving_env: ServingEnv, traffic: Any
) -> None:
    name = serving_env.model_name("stable")
    serving_env.publish(name, variant=0)
    good = serving_env.deploy("--model", name)
    seen = traffic(name)

    # Version 2's files are intact (checksums match) but the model cannot be loaded.
    broken = serving_env.workdir / f"{name}-broken"
    _, _, model = serving_env.publish(name, variant=1)
    model.directory.rename(broken)  # keep the good files away; publish a broken copy
    (broken / "model.pkl").write_bytes(b"this is not a pickle")
    ref = publish_version(serving_env.store, name, broken)
    from rayline.metadata import ModelRegistry

    ModelRegistry().register_version(
        serving_env.engine, name=name, artifact_uri=ref.uri, sha256=ref.manifest_sha256
    )

    outcome = serving_env.deploy_job("--model", f"{name}:3")
    _settle(seen, seconds=1)
    assert outcome.result is None and outcome.job.error is not None
    assert outcome.job.error.error == "DeploymentFailedError"
    assert seen.failures == [], seen.failures[:5]
    assert set(seen.versions) == {1}
    assert serving_env.deployment(good["deployment_id"]).status == DeploymentStatus.LIVE
    assert [s.url for s in serving_env.client.live_endpoints(name).data] == [good["url"]]
    failed = [
        d
        for d in _deployments(serving_env, name)
        if d.model_version == 3 and d.status == DeploymentStatus.FAILED
    ]
    assert len(failed) == 1 and failed[0].error
    assert serving_env.containers(deployment=failed[0].id) == []
    serving_env.deploy("--delete", name)


def test_serving_without_docker_on_the_ray_cluster(serving_env: ServingEnv) -> None:
    name = serving_env.model_name("raymode")
    _, _, model = serving_env.publish(name, framework="xgboost")
    result = serving_env.deploy("--model", name, mode="ray")
    assert result["mode"] == "ray" and result["image"] is None
    assert result["url"].endswith(f"/{result['deployment_id']}")

    rows = iris_rows(12, seed=5)
    expected = model.predictor.predict(
        [dict(zip(model.feature_names, r, strict=True)) for r in rows]
    )
    response = post_predict(result["url"], name, {"instances": rows.tolist()})
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == expected
    assert post_predict(result["url"], name, {"instances": [[1]]}).status_code == 422
    assert httpx.get(f"{result['url']}/healthz").status_code == 200
    row = serving_env.deployment(result["deployment_id"])
    assert row.mode == DeploymentMode.RAY and row.status == DeploymentStatus.LIVE
    assert [s.url for s in serving_env.client.live_endpoints(name).data] == [result["url"]]
    assert serving_env.containers(model=name) == []

    serving_env.deploy("--delete", result["deployment_id"])
    assert serving_env.deployment(result["deployment_id"]).status == DeploymentStatus.STOPPED
    wait_for(
        lambda: httpx.get(f"{result['url']}/healthz").status_code == 404,
        timeout=60,
        what="the Serve application's removal",
    )


def _deployments(env: ServingEnv, name: str) -> list[Any]:
    from rayline.serving import records

    return records.list_deployments(env.engine, model=name)
