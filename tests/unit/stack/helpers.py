"""A stack configuration on a fake services dir (no service runs)."""

from __future__ import annotations

from pathlib import Path

from rayline.stack.config import StackConfig


def stack_config(tmp_path: Path, *, coordination: bool = False) -> StackConfig:
    """Ports and names of a test stack; ``services.env`` as `deploy/services.sh` writes it."""
    services = tmp_path / "services"
    services.mkdir(exist_ok=True)
    (services / "services.env").write_text(
        "export RAYLINE_PG_URL=postgresql+psycopg://rayline:pgpw@127.0.0.1:55432/rayline\n"
        "export RAYLINE_S3_ENDPOINT_URL=http://127.0.0.1:59000\n"
        "export RAYLINE_S3_ACCESS_KEY_ID=key\n"
        "export RAYLINE_S3_SECRET_ACCESS_KEY=s3secret\n"
        "export DOCKER_HOST=unix:///x/docker.sock\n"
    )
    return StackConfig(
        state_dir=tmp_path / "stack", services_dir=services, pg_port=55432, s3_port=59000,
        manager_port=18775, airflow_port=18080, database="rl_meta", airflow_database="af_meta",
        bucket="bkt", coordination=coordination,
    )  # fmt: skip
