"""The shipped dashboards, provisioning files and rules, and the query checker's bad-input paths.

Evaluation against a live Prometheus is in tests/integration/monitoring/.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from rayline.monitoring.queries import (
    Query,
    QueryFileError,
    alert_signal,
    check_queries,
    collect_queries,
    dashboard_queries,
    rule_queries,
)

REPO = Path(__file__).resolve().parents[3]
GRAFANA = REPO / "deploy" / "grafana"
RULES = REPO / "deploy" / "prometheus" / "rules"


def test_every_dashboard_uses_the_provisioned_datasource() -> None:
    provisioned = yaml.safe_load((GRAFANA / "provisioning/datasources/rayline.yml").read_text())
    (source,) = provisioned["datasources"]
    assert source["type"] == "prometheus"
    paths = sorted((GRAFANA / "dashboards").glob("*.json"))
    assert [p.stem for p in paths] == [
        "rayline-clusters",
        "rayline-serving",
        "rayline-training",
        "rayline-workflows",
    ]
    for path in paths:
        doc = json.loads(path.read_text())
        assert doc["uid"] == path.stem
        ids = [panel["id"] for panel in doc["panels"]]
        assert len(ids) == len(set(ids)), path
        for panel in doc["panels"]:
            refs = [panel["datasource"], *(t["datasource"] for t in panel["targets"])]
            assert all(r == {"type": "prometheus", "uid": source["uid"]} for r in refs), (
                path,
                panel["title"],
            )
            assert set(panel["gridPos"]) == {"h", "w", "x", "y"}


def test_dashboard_provider_points_at_a_folder_of_json_files() -> None:
    doc = yaml.safe_load((GRAFANA / "provisioning/dashboards/rayline.yml").read_text())
    (provider,) = doc["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]


def test_queries_are_collected_from_every_file() -> None:
    queries = collect_queries(GRAFANA / "dashboards", RULES)
    alerts = {q.where for q in queries if q.is_alert}
    assert {
        "alert RaylineClusterStuckProvisioning",
        "alert RaylineServingEndpointDown",
        "alert RaylineServingErrorRateHigh",
        "alert RaylineReaperFailing",
    } <= alerts
    assert all(q.expr.strip() for q in queries)


@pytest.mark.parametrize(
    ("expr", "signal"),
    [
        ("up == 0", "up"),
        (
            'sum(rate(x{code=~"5.."}[5m])) / sum(rate(y[5m])) > 0.05',
            'sum(rate(x{code=~"5.."}[5m])) / sum(rate(y[5m]))',
        ),
        ("(a or b * 0) >= 1", "(a or b * 0)"),
        ('count(x{a!="b"})', 'count(x{a!="b"})'),
        ('label_replace(up, "d", "<", "", "") < 1', 'label_replace(up, "d", "<", "", "")'),
    ],
)
def test_alert_signal_is_the_left_side_of_the_top_level_comparison(expr: str, signal: str) -> None:
    assert alert_signal(expr) == signal


def test_unreadable_dashboard_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"panels": [')
    with pytest.raises(QueryFileError, match=r"bad\.json"):
        dashboard_queries(path)
    path.write_text(json.dumps({"panels": [{"title": "P", "targets": [{"refId": "A"}]}]}))
    with pytest.raises(QueryFileError, match=r"bad\.json: panel 'P' target A has no `expr`"):
        dashboard_queries(path)


def test_rule_without_expression_is_named(tmp_path: Path) -> None:
    path = tmp_path / "rules.yml"
    path.write_text("groups:\n  - name: g\n    rules:\n      - alert: Broken\n")
    with pytest.raises(QueryFileError, match=r"rules\.yml: alert Broken has no `expr`"):
        rule_queries(path)


def test_checker_names_file_place_and_query_and_the_grafana_variables_it_cannot_fill(
    tmp_path: Path,
) -> None:
    seen: list[str] = []

    def prometheus(request: httpx.Request) -> httpx.Response:
        expr = dict(httpx.QueryParams(request.content.decode()))["query"]
        seen.append(expr)
        if "(" in expr and ")" not in expr:
            body: dict[str, Any] = {"status": "error", "errorType": "bad_data", "error": "parse"}
            return httpx.Response(400, json=body)
        result = [] if "missing" in expr else [{"metric": {}, "value": [0, "1"]}]
        return httpx.Response(200, json={"status": "success", "data": {"result": result}})

    file = tmp_path / "d.json"
    queries = [
        Query(file, "panel 'ok' target A", "rate(x[$__rate_interval])"),
        Query(file, "panel 'syntax' target A", "sum(x"),
        Query(file, "panel 'empty' target A", "missing"),
        Query(file, "panel 'var' target A", 'x{model="$model"}'),
        Query(file, "alert A", "missing > 1", is_alert=True),
    ]
    problems = check_queries("http://prom", queries, transport=httpx.MockTransport(prometheus))
    assert "rate(x[1m])" in seen
    assert problems == [
        f"{file}: panel 'syntax' target A: sum(x: bad_data: parse",
        f"{file}: panel 'empty' target A: missing: returned no data",
        f"{file}: panel 'var' target A: x{{model=\"$model\"}}: unknown variable(s) $model",
        f"{file}: alert A: missing > 1: its signal `missing` returned no data",
    ]
