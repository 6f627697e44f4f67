"""Prometheus scrapes every part through our file_sd files; every dashboard and rule query works.

Runs against the real Prometheus of ``deploy/monitoring.sh`` (see conftest.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from rayline.monitoring.queries import check_queries, collect_queries, dashboard_queries
from tests.integration.monitoring.conftest import REPO, MonitoringEnv, wait_until

DASHBOARDS = REPO / "deploy" / "grafana" / "dashboards"
RULES = REPO / "deploy" / "prometheus" / "rules"
SCRAPE_TIMEOUT = 120


def up_targets(env: MonitoringEnv, job: str) -> list[dict[str, Any]]:
    return [t for t in env.active_targets() if t["labels"]["job"] == job and t["health"] == "up"]


def test_each_kind_of_target_is_scraped_with_its_labels(monitoring_env: MonitoringEnv) -> None:
    env = monitoring_env
    manager = wait_until(
        lambda: up_targets(env, "rayline-manager"), timeout=SCRAPE_TIMEOUT, what="manager scraped"
    )
    assert manager[0]["labels"]["component"] == "cluster-manager"

    def both_clusters() -> list[dict[str, Any]]:
        targets = up_targets(env, "rayline-ray")
        seen = {(t["labels"]["cluster_id"], t["labels"]["node"]) for t in targets}
        wanted = {(env.training.id, "head"), (env.serving.id, "head")}
        return targets if wanted <= seen else []

    ray = wait_until(both_clusters, timeout=SCRAPE_TIMEOUT, what="Ray heads of both clusters up")
    purposes = {t["labels"]["cluster_id"]: t["labels"]["purpose"] for t in ray}
    assert purposes == {env.training.id: "training", env.serving.id: "serving"}

    serving = wait_until(
        lambda: up_targets(env, "rayline-serving"), timeout=SCRAPE_TIMEOUT, what="model scraped"
    )
    labels = serving[0]["labels"]
    assert (labels["model"], labels["version"]) == (env.model, "1")
    assert labels["cluster_id"] == env.serving.id

    # Series of every kind of target (the manager's gauges follow its first lifecycle pass).
    for expr in (
        'rayline_clusters{job="rayline-manager"}',
        f'ray_node_cpu_utilization{{cluster_id="{env.training.id}"}}',
        f'rayline_serving_requests_total{{model="{env.model}",code="200"}}',
        'rayline_workflow_steps{step="train",status="success"}',
    ):
        wait_until(lambda e=expr: env.query(e), timeout=SCRAPE_TIMEOUT, what=f"series {expr}")


def test_every_dashboard_and_rule_query_returns_data(monitoring_env: MonitoringEnv) -> None:
    env = monitoring_env
    queries = collect_queries(DASHBOARDS, RULES)
    dashboards = {q.file.name for q in queries if q.file.suffix == ".json"}
    assert dashboards == {
        "rayline-clusters.json",
        "rayline-serving.json",
        "rayline-training.json",
        "rayline-workflows.json",
    }
    assert sum(q.is_alert for q in queries) >= 4
    # Rates need a few scrapes of the load: retry until every query has data.
    deadline = time.monotonic() + SCRAPE_TIMEOUT
    while (problems := check_queries(env.prometheus_url, queries)) and (
        time.monotonic() < deadline
    ):
        time.sleep(2)
    assert not problems, "\n".join(problems)


def test_promtool_accepts_the_rendered_config_and_the_rules(
    monitoring_env: MonitoringEnv,
) -> None:
    config = monitoring_env.state_dir / "prometheus.yml"
    for args in (
        ["check", "config", str(config)],
        ["check", "rules", *map(str, RULES.glob("*.yml"))],
    ):
        result = subprocess.run(["promtool", *args], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def test_broken_dashboard_and_rules_fail_naming_file_and_query(
    monitoring_env: MonitoringEnv, tmp_path: Path
) -> None:
    dashboards, rules = tmp_path / "dashboards", tmp_path / "rules"
    dashboards.mkdir()
    rules.mkdir()
    doc = json.loads((DASHBOARDS / "rayline-serving.json").read_text())
    doc["panels"][2]["targets"][0]["expr"] = "sum(rate(rayline_serving_requests_total[1m])"
    doc["panels"][3]["targets"][0]["expr"] = "rayline_no_such_metric"
    (dashboards / "broken.json").write_text(json.dumps(doc))
    shutil.copy(RULES / "rayline.yml", rules / "rayline.yml")
    text = (rules / "rayline.yml").read_text()
    (rules / "rayline.yml").write_text(
        text.replace("increase(rayline_reaper_errors_total[10m]) > 0", "rate(up[) > 0")
    )

    problems = check_queries(monitoring_env.prometheus_url, collect_queries(dashboards, rules))
    assert len(problems) == 3, "\n".join(problems)
    syntax, missing, rule = problems
    assert str(dashboards / "broken.json") in syntax
    assert "sum(rate(rayline_serving_requests_total[1m])" in syntax and "bad_data" in syntax
    assert "rayline_no_such_metric" in missing and "returned no data" in missing
    assert str(rules / "rayline.yml") in rule and "alert RaylineReaperFailing" in rule
    assert "rate(up[) > 0" in rule

    check = subprocess.run(
        ["promtool", "check", "rules", str(rules / "rayline.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode != 0
    assert str(rules / "rayline.yml") in check.stdout + check.stderr
    assert len(dashboard_queries(dashboards / "broken.json")) == len(doc_targets(doc))


def doc_targets(doc: dict[str, Any]) -> list[Any]:
    return [t for p in doc["panels"] for t in p["targets"]]


def test_terminated_cluster_disappears_from_the_targets(monitoring_env: MonitoringEnv) -> None:
    env = monitoring_env
    cluster_id = env.training.id
    target_file = env.sd_dir / f"cluster-{cluster_id}.json"
    assert target_file.is_file()
    env.client.delete_cluster(cluster_id)
    # (wait_for_state is one long-poll of at most 60 s; wait_until polls until the end.)
    env.client.wait_until(cluster_id, state="TERMINATED", timeout=SCRAPE_TIMEOUT)
    # The manager rewrites the files after the TERMINATED transition is committed, so
    # a waiter may see TERMINATED a moment before the file is gone.
    wait_until(
        lambda: not target_file.exists(), timeout=30, what=f"{target_file.name} being removed"
    )

    def gone() -> bool:
        return all(t["labels"].get("cluster_id") != cluster_id for t in env.active_targets())

    wait_until(gone, timeout=SCRAPE_TIMEOUT, what=f"cluster {cluster_id} leaving the targets")
    # The serving cluster is still there.
    assert any(t["labels"].get("cluster_id") == env.serving.id for t in env.active_targets())
