"""The Grafana dashboard and the Prometheus alert rules (``infra/``) name only metrics the application
exports, and the dashboard shows every one of them — so neither can drift from the code (decision
0049). ``tests/api/test_business_metrics.py`` checks the exported names against a real scrape."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from lianka.platform.metrics import exported_names

INFRA = Path(__file__).resolve().parents[2] / "infra"
DASHBOARD = INFRA / "grafana" / "dashboards" / "lianka.json"
ALERTS = INFRA / "prometheus" / "alerts.yml"
#: a metric name in PromQL: an identifier followed by a selector, a range, or a closing parenthesis/
#: operator — but not a function (followed by "(") nor a label name (inside braces or by/without lists)
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_KEYWORDS = {"by", "without", "and", "or", "unless", "on", "ignoring", "group_left", "group_right", "offset", "bool"}


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads (label matchers, grouping labels, functions, durations
    and string literals taken out first)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # grouping labels
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges and subqueries
    names = set()
    for m in _IDENT.finditer(expr):
        word, rest = m.group(), expr[m.end() :].lstrip()
        if word in _KEYWORDS or rest.startswith("(") or re.fullmatch(r"\d+(?:e\d+)?", word):
            continue
        if expr[max(0, m.start() - 1)].isdigit():  # the exponent of 1e-9
            continue
        names.add(word)
    return names


def _exprs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["expr"]] if isinstance(node.get("expr"), str) else []
        return found + [e for v in node.values() for e in _exprs(v)]
    if isinstance(node, list):
        return [e for v in node for e in _exprs(v)]
    return []


def test_the_parser_finds_metric_names_and_nothing_else() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, path) (rate(lianka_request_duration_seconds_bucket{path=~"/a"}[5m])))'
        " / clamp_min(sum(rate(lianka_requests_total[5m])), 1e-9) > 0.02 and max(lianka_outbox_depth) > 100"
    )
    assert metric_names(expr) == {
        "lianka_request_duration_seconds_bucket",
        "lianka_requests_total",
        "lianka_outbox_depth",
    }


def test_the_dashboard_reads_only_exported_metrics_and_shows_them_all() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = _exprs(dashboard["panels"])
    assert exprs
    used = set().union(*(metric_names(e) for e in exprs))
    assert used <= exported_names(), f"not exported: {sorted(used - exported_names())}"
    families = {re.sub(r"_(total|bucket|sum|count)$", "", n) for n in exported_names()}
    shown = {re.sub(r"_(total|bucket|sum|count)$", "", n) for n in used}
    # the in-progress gauge and the error counter of the HTTP middleware are not worth a panel
    assert families - shown == {"lianka_requests_in_progress", "lianka_requests_error"}


def test_the_alert_rules_read_only_exported_metrics() -> None:
    rules = [r for group in yaml.safe_load(ALERTS.read_text())["groups"] for r in group["rules"]]
    names = {r["alert"] for r in rules}
    assert {"LiankaOutboxGrowing", "LiankaJobLag", "LiankaHigh5xxRate", "LiankaWebhookFailures"} <= names
    for rule in rules:
        used = metric_names(rule["expr"])
        assert used, rule["alert"]
        assert used <= exported_names(), f"{rule['alert']} reads {sorted(used - exported_names())}"


def test_the_provisioned_dashboard_is_the_one_in_the_repository() -> None:
    provider = yaml.safe_load((INFRA / "grafana" / "provisioning" / "dashboards" / "lianka.yaml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    compose = yaml.safe_load((INFRA / "compose.yaml").read_text())
    grafana_volumes = compose["services"]["grafana"]["volumes"]
    assert "./grafana/dashboards:/var/lib/grafana/dashboards:ro" in grafana_volumes
    assert "./prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in compose["services"]["prometheus"]["volumes"]
