"""deploy/: every query of the alert rules and the Grafana dashboard names
metrics (and labels) the gateway exports; Prometheus scrapes every gateway
service of docker-compose.yml on the metrics port its config sets."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.metrics import MetricWrapperBase

from gateway.observability.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
_METRIC = re.compile(r"\b(upload_gateway_[a-z_]+)\b")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")
_MATCHER = re.compile(r"([a-z_]+)\s*(?:=~|!~|!=|=)\s*\"")
#: labels Prometheus adds to every scraped sample, and the histogram's own
_TARGET_LABELS = {"instance", "job", "le"}
#: a counter's # TYPE line already names its ``_total`` series
_SUFFIXES = {"counter": ("",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def _exported() -> dict[str, set[str]]:
    """Sample name → label names, of every metric in /metrics' text (a
    family without samples yet still has its # TYPE line)."""
    metrics = Metrics(buckets=["default"], backends=["default"])
    text = generate_latest(metrics.registry).decode()
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    labels = {
        c._name: set(c._labelnames)
        for c in vars(metrics).values()
        if isinstance(c, MetricWrapperBase)
    }
    for counter in metrics.uploads.values():
        labels[counter._name] = set(counter._labelnames)
    exported: dict[str, set[str]] = {}
    for family, kind in types.items():
        for suffix in _SUFFIXES[kind]:
            exported[family + suffix] = labels[family.removesuffix("_total")] | _TARGET_LABELS
    return exported


def _queries() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            found.append((f"alert {rule['alert']}", rule["expr"]))
    dashboard = json.loads((DEPLOY / "grafana" / "upload-gateway.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            found.append((f"panel {panel['title']!r}", target["expr"]))
    return found


@pytest.mark.parametrize(("where", "expr"), _queries())
def test_queries_name_exported_metrics_and_labels(where: str, expr: str) -> None:
    exported = _exported()
    names = set(_METRIC.findall(expr))
    assert names or expr.startswith("up{"), f"{where}: names no gateway metric"
    unknown = names - exported.keys()
    assert not unknown, f"{where}: {sorted(unknown)} not exported"
    allowed = set().union(*(exported[n] for n in names)) if names else {"job"}
    used = set(_MATCHER.findall(expr))
    for group in _GROUPING.findall(expr):
        used |= {label.strip() for label in group.split(",") if label.strip()}
    assert used <= allowed, f"{where}: labels {sorted(used - allowed)} not on {sorted(names)}"


def test_every_exported_family_is_on_the_dashboard() -> None:
    shown = {m for _, e in _queries() if _ for m in _METRIC.findall(e)}
    families = {re.sub(r"_(total|bucket|sum|count)$", "", n) for n in _exported()}
    missing = {f for f in families if not any(s.startswith(f) for s in shown)}
    assert not missing, f"not on the dashboard nor in an alert: {sorted(missing)}"


def test_prometheus_scrapes_every_gateway() -> None:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    gateways = sorted(n for n in compose["services"] if n.startswith("gateway"))
    port = yaml.safe_load((DEPLOY / "gateway.yaml").read_text())["metrics"]["port"]
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = scrape["scrape_configs"]
    targets = sorted(t for c in job["static_configs"] for t in c["targets"])
    assert targets == [f"{g}:{port}" for g in gateways]
    assert "/etc/prometheus/alerts.yml" in scrape["rule_files"]
    prometheus = compose["services"]["prometheus"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    assert set(gateways) <= set(prometheus["depends_on"])
