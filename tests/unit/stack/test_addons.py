"""The stack's optional servers: their scripts' settings, and how the stack uses them.

The scripts themselves are replaced by small shell stand-ins that record their
calls; the real ones run in the stack's end-to-end test.
"""

from __future__ import annotations

import dataclasses
import stat
from pathlib import Path

import pytest

from rayline.stack import addons
from rayline.stack.config import StackConfig, load_secrets
from rayline.stack.environment import process_environment
from rayline.stack.stack import Stack
from tests.unit.stack.helpers import stack_config


def _config(tmp_path: Path, *, coordination: bool = False) -> StackConfig:
    return stack_config(tmp_path, coordination=coordination)


def _stand_in(tmp_path: Path, name: str, status_up: bool) -> Path:
    """A script that logs its calls; ``status`` says up or down."""
    script = tmp_path / name
    log = tmp_path / f"{name}.calls"
    state = "up" if status_up else "down"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$1 $RAYLINE_MONITORING_DIR $RAYLINE_ZK_PORT" >> {log}\n'
        f'if [ "$1" = status ]; then echo "x: {state}"; [ {state} = up ] || exit 3; fi\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_prometheus_reads_the_stack_managers_targets_with_its_token(tmp_path: Path) -> None:
    config = _config(tmp_path)
    addon = addons.monitoring(config, "tok")
    assert addon.env["RAYLINE_PROMETHEUS_SD_DIR"] == str(
        config.rayline_home / "prometheus" / "targets"
    )
    assert addon.env["RAYLINE_MONITORING_DIR"] == str(config.state_dir / "monitoring")
    assert addon.env["RAYLINE_API_TOKEN"] == "tok"
    assert addon.url == "http://127.0.0.1:59090"


def test_coordination_names_zookeeper_in_the_managers_environment(tmp_path: Path) -> None:
    env = process_environment(
        _config(tmp_path, coordination=True), load_secrets(tmp_path / "stack")
    )
    assert env["RAYLINE_ZOOKEEPER_HOSTS"] == "127.0.0.1:52181"
    stored = load_secrets(tmp_path / "stack").zookeeper_password.get_secret_value()
    assert env["RAYLINE_ZOOKEEPER_PASSWORD"] == stored  # its znodes are the managers' alone
    plain = process_environment(_config(tmp_path), load_secrets(tmp_path / "stack"))
    assert "RAYLINE_ZOOKEEPER_HOSTS" not in plain
    assert "RAYLINE_ZOOKEEPER_PASSWORD" not in plain


def test_an_addon_is_started_once_and_stopped_only_when_ours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = Stack(_config(tmp_path))
    load_secrets(tmp_path / "stack")
    down = _stand_in(tmp_path, "mon-down.sh", status_up=False)
    addon = dataclasses.replace(addons.monitoring(stack.config, "t"), script=down)

    stack.up_addon(addon, required=False)
    assert "prometheus" in stack.state.started("addons")
    calls = (tmp_path / "mon-down.sh.calls").read_text().split("\n")
    assert [c.split(" ")[0] for c in calls if c] == ["status", "up"]

    running = dataclasses.replace(addon, script=_stand_in(tmp_path, "mon-up.sh", status_up=True))
    stack.up_addon(running, required=False)  # already up: not started again
    assert (tmp_path / "mon-up.sh.calls").read_text().split()[0] == "status"


def test_a_failing_optional_addon_only_warns(tmp_path: Path) -> None:
    lines: list[str] = []
    stack = Stack(_config(tmp_path), report=lines.append)
    load_secrets(tmp_path / "stack")
    broken = tmp_path / "broken.sh"
    broken.write_text("#!/bin/sh\necho 'port 59090 is taken' >&2\nexit 1\n")
    broken.chmod(broken.stat().st_mode | stat.S_IXUSR)
    addon = dataclasses.replace(addons.monitoring(stack.config, "t"), script=broken)

    stack.up_addon(addon, required=False)

    assert any("prometheus not started" in line and "59090 is taken" in line for line in lines)
    assert "prometheus" not in stack.state.started("addons")


def test_mlflow_gets_its_own_database_and_the_stacks_bucket_and_only_the_services_it_needs(
    tmp_path: Path,
) -> None:
    config = dataclasses.replace(_config(tmp_path), mlflow_port=55999, mlflow_database="mlf_x")
    services = {
        "RAYLINE_PG_URL": "postgresql+psycopg://u:p@127.0.0.1:1/postgres",
        "RAYLINE_S3_ENDPOINT_URL": "http://127.0.0.1:2",
        "RAYLINE_S3_ACCESS_KEY_ID": "id",
        "RAYLINE_S3_SECRET_ACCESS_KEY": "secret",
        "DOCKER_HOST": "unix:///nope.sock",
    }
    addon = addons.mlflow(config, services)
    assert addon.url == "http://127.0.0.1:55999"
    assert addon.env["RAYLINE_MLFLOW_DATABASE"] == "mlf_x"
    assert addon.env["RAYLINE_MLFLOW_ARTIFACTS"] == f"s3://{config.bucket}/mlflow"
    assert addon.env["RAYLINE_MLFLOW_DIR"] == str(config.state_dir / "mlflow")
    assert addon.env["RAYLINE_S3_SECRET_ACCESS_KEY"] == "secret"
    assert "DOCKER_HOST" not in addon.env  # the tracking server has no business with Docker


def test_the_stacks_training_is_tracked_by_its_mlflow_and_required_unless_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = dataclasses.replace(_config(tmp_path), mlflow_port=55998)
    monkeypatch.delenv("RAYLINE_MLFLOW_REQUIRED", raising=False)
    env = process_environment(config, load_secrets(tmp_path / "stack"))
    assert env["RAYLINE_MLFLOW_TRACKING_URI"] == "http://127.0.0.1:55998"
    assert env["RAYLINE_MLFLOW_REQUIRED"] == "true"
    monkeypatch.setenv("RAYLINE_MLFLOW_REQUIRED", "false")
    allowed = process_environment(config, load_secrets(tmp_path / "stack"))
    assert allowed["RAYLINE_MLFLOW_REQUIRED"] == "false"
