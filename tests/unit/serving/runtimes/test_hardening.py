"""The confinement a model container is started with, as built from its serving spec."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from rayline.serving import model_image
from rayline.serving.model import ServedModel
from rayline.serving.runtimes.hardening import container_cpus, hardened_run_options
from rayline.serving.spec import ServingSpec
from tests.unit.serving.test_docker_labels import run_container

MIB = 1024 * 1024
SERVED = ServedModel(name="iris", version=3, version_id="v3", sha256="a" * 64, framework="sklearn")


def test_defaults_confine_the_container() -> None:
    options = hardened_run_options(ServingSpec(), engine_cpus=8)

    assert options["user"] == "10001:10001"
    assert options["cap_drop"] == ["ALL"]
    assert options["security_opt"] == ["no-new-privileges:true"]
    assert options["read_only"] is True
    assert options["tmpfs"] == {"/tmp": "rw,noexec,nosuid,nodev,size=512m,mode=1777"}
    assert options["mem_limit"] == options["memswap_limit"] == 2048 * MIB
    assert options["nano_cpus"] == 2_000_000_000  # ray_cpus by default
    assert options["pids_limit"] == 1024


def test_limits_come_from_the_spec() -> None:
    spec = ServingSpec(
        container_memory_mib=4096, container_cpus=1.5, container_pids=300, container_tmp_mib=256
    )
    options = hardened_run_options(spec, engine_cpus=8)

    assert options["mem_limit"] == options["memswap_limit"] == 4096 * MIB
    assert options["nano_cpus"] == 1_500_000_000
    assert options["pids_limit"] == 300
    assert "size=256m" in options["tmpfs"]["/tmp"]


@pytest.mark.parametrize(
    ("spec", "engine", "cpus"),
    [
        (ServingSpec(ray_cpus=4), 2, 2.0),  # Docker refuses more than it has
        (ServingSpec(ray_cpus=4), None, 4.0),
        (ServingSpec(ray_cpus=4, container_cpus=0.5), 2, 0.5),
        (ServingSpec(container_cpus=3), 0, 3.0),
    ],
)
def test_cpu_limit_is_capped_at_the_engine(
    spec: ServingSpec, engine: int | None, cpus: float
) -> None:
    assert container_cpus(spec, engine) == cpus


@pytest.mark.parametrize(
    "fields",
    [
        {"container_memory_mib": 100},  # below what Ray needs to start
        {"container_memory_mib": 2 * 1024 * 1024},
        {"container_cpus": 0},
        {"container_cpus": 5000},
        {"container_pids": 10},
        {"container_pids": 10**6},
        {"container_tmp_mib": 1},
        {"container_memory_mib": 1024, "container_tmp_mib": 1024},  # the tmpfs is memory
    ],
)
def test_limits_are_bounded(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ServingSpec(**fields)


def test_docker_runtime_starts_containers_confined(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = ServingSpec(ray_cpus=4, container_memory_mib=1024, container_pids=256)
    kwargs = run_container(tmp_path, monkeypatch, spec=spec)

    assert kwargs["user"] == "10001:10001" and kwargs["read_only"] is True
    assert kwargs["cap_drop"] == ["ALL"]
    assert kwargs["security_opt"] == ["no-new-privileges:true"]
    assert kwargs["mem_limit"] == 1024 * MIB and kwargs["pids_limit"] == 256
    assert kwargs["nano_cpus"] == 2_000_000_000  # the fake engine has 2 CPUs
    # Nothing but the run-time description: no credential of the stack.
    assert list(kwargs["environment"]) == ["RAYLINE_SERVING_RUNTIME"]
    assert "privileged" not in kwargs and "volumes" not in kwargs


def test_model_image_runs_as_the_unprivileged_user() -> None:
    dockerfile = model_image._MODEL_DOCKERFILE.format(base="base")
    lines = dockerfile.splitlines()
    user = [line for line in lines if line.startswith("USER ")]
    assert user == ["USER 10001:10001"]
    # Set after every build step: those run as root, the server does not.
    assert lines.index(user[0]) > max(i for i, line in enumerate(lines) if line.startswith("RUN"))
    assert "useradd --system --uid 10001" in dockerfile


def test_build_context_is_readable_by_the_server_and_writable_by_no_one_else(
    tmp_path: Path,
) -> None:
    secret = tmp_path / "model" / "model.pkl"
    secret.parent.mkdir()
    secret.write_bytes(b"x")
    secret.chmod(0o600)
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o777)
    (tmp_path / "model").chmod(0o700)

    model_image._make_readable(tmp_path)

    assert stat.S_IMODE(secret.stat().st_mode) == 0o644
    assert stat.S_IMODE(script.stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "model").stat().st_mode) == 0o755
    assert not os.path.islink(secret)
