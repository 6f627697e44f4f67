"""Every PromQL expression of our Grafana dashboards and Prometheus rules, and a checker.

`collect_queries` reads ``deploy/grafana/dashboards/*.json`` and
``deploy/prometheus/rules/*.yml`` and returns one `Query` per panel target and per
rule, naming its file and place. `check_queries` runs each through a live
Prometheus's HTTP API and returns one problem line per expression that fails to
parse, fails to evaluate or returns no data. For an alert (``signal > bound``)
the whole expression must evaluate and its signal (the left side of the top-level
comparison) must return data: an alert that does not fire is not an error.

Grafana's built-in interval variables are replaced by fixed windows; any other
``$variable`` is reported, because Prometheus cannot evaluate it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

__all__ = [
    "GRAFANA_VARIABLES",
    "Query",
    "QueryFileError",
    "alert_signal",
    "check_queries",
    "collect_queries",
    "dashboard_queries",
    "rule_queries",
]

GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
}
_VARIABLE = re.compile(r"\$\{?\w+\}?")
_COMPARISONS = ("==", "!=", ">=", "<=", ">", "<")


class QueryFileError(ValueError):
    """A dashboard or rules file that cannot be read as such."""


@dataclass(frozen=True)
class Query:
    """One PromQL expression and where it comes from."""

    file: Path
    where: str  # e.g. "panel 'Throughput' target A", "alert RaylineReaperFailing"
    expr: str
    is_alert: bool = False

    def describe(self) -> str:
        """``file: where: expr``, for failure messages."""
        return f"{self.file}: {self.where}: {self.expr}"


def _panels(panels: Iterable[Any]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        if isinstance(panel, dict):
            yield panel
            yield from _panels(panel.get("panels") or [])  # panels inside collapsed rows


def dashboard_queries(path: Path) -> list[Query]:
    """The target expressions of every panel of a Grafana dashboard JSON file.

    Raises:
        QueryFileError: not JSON, no panels, or a target without an expression.
    """
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise QueryFileError(f"{path}: not a readable JSON dashboard: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("panels"), list) or not doc["panels"]:
        raise QueryFileError(f"{path}: a dashboard needs a non-empty `panels` list")
    queries = []
    for panel in _panels(doc["panels"]):
        if panel.get("type") == "row":
            continue
        title = panel.get("title", f"id {panel.get('id')}")
        targets = panel.get("targets") or []
        if not targets:
            raise QueryFileError(f"{path}: panel {title!r} has no targets")
        for target in targets:
            where = f"panel {title!r} target {target.get('refId', '?')}"
            expr = target.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                raise QueryFileError(f"{path}: {where} has no `expr`")
            queries.append(Query(path, where, expr))
    return queries


def rule_queries(path: Path) -> list[Query]:
    """The expressions of every alerting and recording rule of a Prometheus rules file.

    Raises:
        QueryFileError: not YAML or not shaped like a rules file.
    """
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise QueryFileError(f"{path}: not a readable YAML rules file: {exc}") from exc
    groups = doc.get("groups") if isinstance(doc, dict) else None
    if not isinstance(groups, list) or not groups:
        raise QueryFileError(f"{path}: a rules file needs a non-empty `groups` list")
    queries = []
    for group in groups:
        for rule in group.get("rules") or []:
            is_alert = "alert" in rule
            where = f"alert {rule['alert']}" if is_alert else f"record {rule.get('record')}"
            expr = rule.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                raise QueryFileError(f"{path}: {where} has no `expr`")
            queries.append(Query(path, where, expr.strip(), is_alert=is_alert))
    return queries


def collect_queries(dashboards_dir: Path, rules_dir: Path) -> list[Query]:
    """Every query of every dashboard and rules file under the two directories."""
    queries: list[Query] = []
    for path in sorted(dashboards_dir.glob("*.json")):
        queries += dashboard_queries(path)
    for path in sorted(rules_dir.glob("*.yml")) + sorted(rules_dir.glob("*.yaml")):
        queries += rule_queries(path)
    return queries


def alert_signal(expr: str) -> str:
    """The left side of the last top-level comparison of ``expr`` (``expr`` when none)."""
    depth, quote, cut = 0, "", None
    i = 0
    while i < len(expr):
        char = expr[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = ""
        elif char in "\"'`":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0:
            for op in _COMPARISONS:
                if expr.startswith(op, i) and not expr.startswith("=~", i):
                    cut = i
                    i += len(op) - 1
                    break
        i += 1
    return expr[:cut].strip() if cut is not None else expr


def _substitute(expr: str) -> str:
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


def _evaluate(client: httpx.Client, expr: str) -> tuple[str | None, int]:
    """Run an instant query; returns (error or None, number of result series/samples)."""
    try:
        response = client.post("/api/v1/query", data={"query": expr})
    except httpx.HTTPError as exc:
        return f"Prometheus did not answer: {exc}", 0
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:200]}", 0
    if body.get("status") != "success":
        return f"{body.get('errorType', 'error')}: {body.get('error', response.text[:200])}", 0
    result = body["data"]["result"]
    return None, len(result) if isinstance(result, list) else 1


def check_queries(
    prometheus_url: str,
    queries: Iterable[Query],
    *,
    transport: httpx.BaseTransport | None = None,
) -> list[str]:
    """Evaluate each query against Prometheus; one line per problem, naming file and query."""
    problems = []
    with httpx.Client(base_url=prometheus_url, timeout=30, transport=transport) as client:
        for query in queries:
            expr = _substitute(query.expr)
            unknown = _VARIABLE.findall(expr)
            if unknown:
                problems.append(f"{query.describe()}: unknown variable(s) {', '.join(unknown)}")
                continue
            error, count = _evaluate(client, expr)
            if error is None and query.is_alert:
                error, count = _evaluate(client, alert_signal(expr))
                if error is None and count == 0:
                    error = f"its signal `{alert_signal(expr)}` returned no data"
            elif error is None and count == 0:
                error = "returned no data"
            if error is not None:
                problems.append(f"{query.describe()}: {error}")
    return problems
