"""The deploy lock's plumbing (the lock itself runs on real ZooKeeper in
tests/integration/coordination/test_deploy_lock.py)."""

from __future__ import annotations

from pathlib import Path

from rayline.config import Settings
from rayline.coordination.locks import held_lock
from rayline.jobs.env import job_env


def test_deploy_jobs_get_the_zookeeper_settings_only_when_coordinated(tmp_path: Path) -> None:
    alone = job_env(Settings(home=tmp_path), "deploy", ray_address=None)
    assert not any(name.startswith("RAYLINE_ZOOKEEPER") for name in alone)
    coordinated = job_env(
        Settings(home=tmp_path, zookeeper_hosts="127.0.0.1:2181", zookeeper_root="/rl-x"),
        "deploy",
        ray_address=None,
    )
    assert coordinated["RAYLINE_ZOOKEEPER_HOSTS"] == "127.0.0.1:2181"
    assert coordinated["RAYLINE_ZOOKEEPER_ROOT"] == "/rl-x"
    assert "RAYLINE_ZOOKEEPER_SESSION_TIMEOUT_SECONDS" in coordinated


def test_without_zookeeper_the_lock_holds_nothing() -> None:
    said: list[str] = []
    with (
        held_lock(Settings(), "deploy-iris", timeout=1, waiting=said.append),
        held_lock(Settings(), "deploy-iris", timeout=1, waiting=said.append),
    ):
        pass  # no ZooKeeper: one manager, as before, never waits
    assert said == []
