"""A trained model served from its Docker image: answers, refusals, failures.

Real Cluster Manager on real Postgres, a real serving Ray cluster running the
deploy job, the real S3 server, the real Docker engine.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from typer import Typer
from typer.testing import CliRunner

from rayline.clusters.errors import NotFoundError
from rayline.metadata import DeploymentMode, DeploymentStatus, ModelRegistry
from rayline.serving.client import PredictionClient
from rayline.serving.errors import NoEndpointError
from rayline.serving.health import check_deployments
from rayline.serving.model_image import model_image_tag
from rayline.storage.s3_store import make_s3_client
from tests.integration.serving.conftest import ServingEnv, post_predict
from tests.unit.serving.model_factory import IrisModel, iris_rows

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(serving_env: ServingEnv) -> Iterator[tuple[str, dict[str, Any], IrisModel]]:
    """One model deployed as a container by the deploy job, for the tests to share."""
    name = serving_env.model_name("iris")
    serving_env.publish(name, variant=0)
    _, _, model = serving_env.publish(name, variant=1)  # the latest: version 2
    result = serving_env.deploy("--model", name)
    yield name, result, model


def test_container_answers_like_the_model_in_process(
    serving_env: ServingEnv, served: tuple[str, dict[str, Any], IrisModel]
) -> None:
    name, result, model = served
    assert result["version"] == 2 and result["mode"] == "docker"
    rows = iris_rows(25, seed=7)
    expected = model.predictor.predict(
        [dict(zip(model.feature_names, r, strict=True)) for r in rows]
    )

    response = post_predict(result["url"], name, {"instances": rows.tolist()})
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": expected, "model": name, "version": 2}
    columns = {n: rows[:, i].tolist() for i, n in enumerate(model.feature_names)}
    assert post_predict(result["url"], name, {"inputs": columns}).json()["predictions"] == expected

    # Recorded, registered, labelled.
    row = serving_env.deployment(result["deployment_id"])
    assert row.status == DeploymentStatus.LIVE and row.mode == DeploymentMode.DOCKER
    assert row.cluster_id == serving_env.cluster.id and row.port == result["port"]
    assert [s.url for s in serving_env.client.live_endpoints(name).data] == [result["url"]]
    image = serving_env.docker.images.get(model_image_tag(name, 2))
    assert image.labels["rayline.model"] == name and image.labels["rayline.version"] == "2"
    registered = ModelRegistry().get_version(serving_env.engine, name=name, version=2)
    assert image.labels["rayline.sha256"] == registered.sha256
    assert image.labels["rayline.rayline-version"]
    assert len(serving_env.containers(deployment=result["deployment_id"])) == 1


def test_model_description_health_and_metrics(
    served: tuple[str, dict[str, Any], IrisModel],
) -> None:
    name, result, model = served
    url = result["url"]
    described = httpx.get(f"{url}/v1/models/{name}").json()
    assert described["version"] == 2
    assert described["signature"] == model.predictor.signature.to_dict()
    assert described["metrics"] == model.predictor.metrics
    assert httpx.get(f"{url}/healthz").json()["deployment_id"] == result["deployment_id"]
    post_predict(url, name, {"instances": [[1, 2, 3, 4]]})
    post_predict(url, name, {"instances": []})
    text = httpx.get(f"{url}/metrics").text
    labels = f'model="{name}",version="2"'
    assert f'rayline_serving_requests_total{{code="200",{labels}}}' in text
    assert f'rayline_serving_errors_total{{code="422",{labels}}}' in text
    assert "rayline_serving_request_duration_seconds_bucket" in text
    assert "rayline_serving_batch_size_bucket" in text


def _big_body(size: int) -> bytes:
    row = b"[5.1,3.5,1.4,0.2],"
    count = size // len(row) + 1
    return b'{"instances":[' + row * count + b"[5.1,3.5,1.4,0.2]]}"


BAD_REQUESTS = [
    ("wrong feature count", {"json": {"instances": [[5.1, 3.5, 1.4]]}}, 422, "has 3 values"),
    ("wrong type", {"json": {"instances": [[5.1, "x", 1.4, 0.2]]}}, 422, "must be a finite number"),
    ("missing field", {"json": {"instances": [{"sepal length (cm)": 5.1}]}}, 422, "lacks feature"),
    ("empty list", {"json": {"instances": []}}, 422, "is empty"),
    ("non-JSON", {"content": b"sepal=5.1"}, 400, "not valid JSON"),
    ("empty body", {"content": b""}, 400, "empty"),
    ("50 MB body", {"content": _big_body(50 * 1024 * 1024)}, 413, "larger than the limit"),
]


@pytest.mark.parametrize(("case", "request_kwargs", "status", "message"), BAD_REQUESTS)
def test_bad_input_is_refused_and_the_server_keeps_serving(
    served: tuple[str, dict[str, Any], IrisModel],
    case: str,
    request_kwargs: dict[str, Any],
    status: int,
    message: str,
) -> None:
    name, result, _ = served
    url = f"{result['url']}/v1/models/{name}:predict"
    if "json" in request_kwargs:
        response = httpx.post(url, json=request_kwargs["json"], timeout=60)
    else:
        response = httpx.post(url, content=request_kwargs["content"], timeout=60)
    assert response.status_code == status, f"{case}: {response.text[:300]}"
    assert message in response.json()["detail"], case
    after = post_predict(result["url"], name, {"instances": [[5.1, 3.5, 1.4, 0.2]]})
    assert after.status_code == 200, f"not serving after {case}: {after.text}"


def test_unknown_model_or_version_is_404(served: tuple[str, dict[str, Any], IrisModel]) -> None:
    name, result, _ = served
    url = result["url"]
    unknown = post_predict(url, "no-such-model", {"instances": [[5.1, 3.5, 1.4, 0.2]]})
    assert unknown.status_code == 404 and "not served here" in unknown.json()["detail"]
    old = httpx.post(
        f"{url}/v1/models/{name}/versions/1:predict", json={"instances": [[1, 2, 3, 4]]}
    )
    assert old.status_code == 404 and "version '1'" in old.json()["detail"]
    assert httpx.get(f"{url}/v1/models/no-such-model").status_code == 404
    current = httpx.post(
        f"{url}/v1/models/{name}/versions/2:predict", json={"instances": [[1, 2, 3, 4]]}
    )
    assert current.status_code == 200


def _cli(monkeypatch: pytest.MonkeyPatch, env: ServingEnv) -> tuple[CliRunner, Typer]:
    from rayline.cli.deploy import deploy_command
    from rayline.cli.predict import predict_command
    from rayline.config import get_settings

    for key, value in {
        "RAYLINE_CLUSTER_MANAGER_URL": env.manager.url,
        "RAYLINE_API_TOKEN": env.manager.token,
        "RAYLINE_DATABASE_URL": env.settings.database_url,
        "RAYLINE_ARTIFACT_URI": env.settings.artifact_uri,
        "RAYLINE_HOME": str(env.settings.home),
        "RAYLINE_SERVING_MODE": "docker",
    }.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    app = Typer()
    app.command("predict")(predict_command)
    app.command("deploy")(deploy_command)
    return CliRunner(), app


def test_cli_predicts_and_names_unknown_models(
    serving_env: ServingEnv,
    served: tuple[str, dict[str, Any], IrisModel],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rayline.config import get_settings

    name, _, model = served
    runner, app = _cli(monkeypatch, serving_env)
    try:
        rows = iris_rows(3, seed=1)
        ok = runner.invoke(
            app, ["predict", name, "--json", json.dumps({"instances": rows.tolist()})]
        )
        assert ok.exit_code == 0, ok.output
        expected = model.predictor.predict(
            [dict(zip(model.feature_names, r, strict=True)) for r in rows]
        )
        assert json.loads(ok.stdout)["predictions"] == expected

        bad = runner.invoke(app, ["predict", name, "--json", '{"instances": [[1]]}'])
        assert bad.exit_code == 1 and "HTTP 422" in bad.output and "has 1 values" in bad.output

        missing = runner.invoke(app, ["predict", "no-such-model", "--json", '{"instances": []}'])
        assert (
            missing.exit_code == 1
            and "no live endpoint serves model 'no-such-model'" in missing.output
        )

        nosuch = runner.invoke(app, ["deploy", "no-such-model"])
        assert nosuch.exit_code == 1 and "model 'no-such-model' is not registered" in nosuch.output
        noversion = runner.invoke(app, ["deploy", f"{name}:99"])
        assert noversion.exit_code == 1 and "has no version 99" in noversion.output
    finally:
        get_settings.cache_clear()


def test_checksum_failure_refuses_and_starts_nothing(serving_env: ServingEnv) -> None:
    name = serving_env.model_name("tampered")
    row, ref, _ = serving_env.publish(name)
    key = f"artifacts/{name}/{ref.version_id}/model.pkl"
    make_s3_client(serving_env.settings).put_object(
        Bucket=serving_env.bucket, Key=key, Body=b"not the model that was registered"
    )

    outcome = serving_env.deploy_job("--model", name)
    assert outcome.result is None and outcome.job.error is not None
    assert "integrity check" in outcome.job.error.message
    assert "refusing to deploy" in outcome.job.error.message
    [deployment] = _deployments_of(serving_env, name)
    assert deployment.status == DeploymentStatus.FAILED and "integrity" in (deployment.error or "")
    assert deployment.container_id is None
    assert serving_env.containers(model=name) == []
    assert serving_env.docker.images.list(name=model_image_tag(name, row.version)) == []
    with pytest.raises(NotFoundError):
        serving_env.client.live_endpoints(name)


def test_port_in_use_is_a_clear_error(serving_env: ServingEnv) -> None:
    name = serving_env.model_name("busy")
    serving_env.publish(name)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        outcome = serving_env.deploy_job("--model", name, "--port", str(port))
    assert outcome.result is None and outcome.job.error is not None
    assert outcome.job.error.error == "PortInUseError"
    assert f"port {port} on 127.0.0.1 is already in use" in outcome.job.error.message
    assert serving_env.containers(model=name) == []


def test_killed_container_is_marked_failed_and_withdrawn(serving_env: ServingEnv) -> None:
    name = serving_env.model_name("doomed")
    serving_env.publish(name)
    result = serving_env.deploy("--model", name)
    assert serving_env.client.live_endpoints(name).data

    [container] = serving_env.containers(deployment=result["deployment_id"])
    container.kill()
    failures = check_deployments(
        settings=serving_env.settings, engine=serving_env.engine, manager=serving_env.client
    )

    assert [f.deployment_id for f in failures] == [result["deployment_id"]]
    row = serving_env.deployment(result["deployment_id"])
    assert row.status == DeploymentStatus.FAILED and "server died" in (row.error or "")
    with pytest.raises(NotFoundError):
        serving_env.client.live_endpoints(name)
    with PredictionClient(serving_env.client) as client, pytest.raises(NoEndpointError):
        client.predict(name, {"instances": [[5.1, 3.5, 1.4, 0.2]]})
    assert serving_env.containers(deployment=result["deployment_id"]) == []  # cleaned up


def test_delete_leaves_no_container_behind(
    serving_env: ServingEnv, served: tuple[str, dict[str, Any], IrisModel]
) -> None:
    name, result, _ = served
    outcome = serving_env.deploy("--delete", name)
    assert [d["deployment_id"] for d in outcome["deleted"]] == [result["deployment_id"]]
    assert serving_env.deployment(result["deployment_id"]).status == DeploymentStatus.STOPPED
    with pytest.raises(NotFoundError):
        serving_env.client.live_endpoints(name)
    assert [c for c in serving_env.containers() if c.status == "running"] == []


def _deployments_of(env: ServingEnv, name: str) -> list[Any]:
    from rayline.serving import records

    return records.list_deployments(env.engine, model=name)
