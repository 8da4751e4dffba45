"""The monitoring that ships in manifests/monitoring/ asks only for what the operator exports.

Every PromQL query (the PrometheusRule's alert expressions, the Grafana dashboard's panels and
template variables) is parsed down to the metric names it selects, and each must be a series
name of ``rotator.metrics.Metrics``'s registry (or Prometheus' own ``up``): a renamed metric or a
typo in a query fails here, not silently on a dashboard. Every alert links its runbook, and every
runbook belongs to an alert.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rotator.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "manifests" / "monitoring"
RUNBOOKS = ROOT / "docs" / "runbooks"

#: Series Prometheus makes itself (scrape health), not the operator.
PROMETHEUS_OWN = frozenset({"up"})

_KEYWORDS = frozenset(
    {"and", "or", "unless", "offset", "bool", "by", "without", "on", "ignoring", "group_left", "group_right"}
    | {"inf", "nan", "atan2", "start", "end"}
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENT = re.compile(r"(?<![\w.$:])([A-Za-z_:][\w:]*)(?!\w)")


def metric_names(query: str) -> set[str]:
    """The metric names a PromQL query selects.

    Strings, label matchers (``{...}``), ranges and subqueries (``[...]``) and label lists of
    ``by``/``without``/``on``/``ignoring``/``group_*`` hold label names and values, not metrics:
    they go first. Of the identifiers left, a function is followed by ``(``, keywords and Grafana
    variables (``$x``) are dropped; the rest are metric names.
    """
    text = _STRING.sub('""', query)
    text = re.sub(r"\{[^{}]*\}", " ", text)
    text = re.sub(r"\[[^\[\]]*\]", " ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        name = match.group(1)
        if name.lower() in _KEYWORDS or text[match.end() :].lstrip().startswith("("):
            continue
        names.add(name)
    return names


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ('rate(a_total{x="y",le=~"b|c"}[5m])', {"a_total"}),
        ("max by (namespace, policy) (g) > 0 and time() > max by (namespace, policy) (g) + 3600", {"g"}),
        ("(a unless on (namespace, policy) b == 1) or c offset 1h", {"a", "b", "c"}),
        ("histogram_quantile(0.95, sum by (le, step) (rate(h_bucket[$__rate_interval])))", {"h_bucket"}),
        ('absent(up{job="rotator"}) or up{job="rotator"} == 0', {"up"}),
        ("time() - (x > 0) * 1e3", {"x"}),
        ('sum(rate(a[1h:5m])) / on() group_left(step) count({__name__="b"})', {"a"}),
    ],
)
def test_the_query_parser_finds_metric_names_and_nothing_else(query: str, names: set[str]) -> None:
    assert metric_names(query) == names


def exported_series() -> set[str]:
    """The series names the operator's registry exposes (a counter as ``_total``, a histogram as
    ``_bucket``/``_sum``/``_count``), whether or not a sample has been recorded yet."""
    names = set()
    for family in Metrics().registry.collect():
        if family.type == "counter":
            names |= {f"{family.name}_total", f"{family.name}_created"}
        elif family.type == "histogram":
            names |= {f"{family.name}_{suffix}" for suffix in ("bucket", "sum", "count", "created")}
        else:
            names.add(family.name)
    return names


def families() -> set[str]:
    return {family.name for family in Metrics().registry.collect()}


def family_of(series: str) -> str:
    for suffix in ("_total", "_bucket", "_sum", "_count", "_created"):
        if series.endswith(suffix) and series.removesuffix(suffix) in families():
            return series.removesuffix(suffix)
    return series


def rules() -> list[dict[str, Any]]:
    rule = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((MONITORING / "dashboard.json").read_text())
    return loaded


def dashboard_queries() -> Iterator[tuple[str, str]]:
    board = dashboard()
    for panel in board["panels"]:
        for target in panel.get("targets", ()):
            yield f"panel {panel['title']!r} {target['refId']}", target["expr"]
    for variable in board["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        selector = re.fullmatch(r"label_values\((.*),\s*\w+\)", query)
        assert selector is not None, f"variable {variable['name']}: only label_values(selector, label)"
        yield f"variable ${variable['name']}", selector.group(1)


def test_every_alert_expression_selects_only_exported_metrics() -> None:
    exported = exported_series() | PROMETHEUS_OWN
    for rule in rules():
        names = metric_names(rule["expr"])
        assert names, f"{rule['alert']}: no metric found in its expression"
        assert names <= exported, f"{rule['alert']} asks for {sorted(names - exported)}"


def test_every_dashboard_query_selects_only_exported_metrics() -> None:
    exported = exported_series() | PROMETHEUS_OWN
    for where, query in dashboard_queries():
        names = metric_names(query)
        assert names, f"{where}: no metric found in {query!r}"
        assert names <= exported, f"{where} asks for {sorted(names - exported)}"


def test_the_dashboard_shows_every_metric_the_operator_exports() -> None:
    shown = {family_of(name) for _, query in dashboard_queries() for name in metric_names(query)}
    assert families() <= shown, f"not on the dashboard: {sorted(families() - shown)}"


def test_the_dashboard_is_importable() -> None:
    board = dashboard()
    assert board["uid"]
    assert board["title"]
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    for panel in board["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", f"{panel['title']}: use the chosen data source"


def test_every_alert_links_its_runbook_and_every_runbook_has_an_alert() -> None:
    alerts = {rule["alert"]: rule for rule in rules()}
    for name, rule in alerts.items():
        url = rule["annotations"].get("runbook_url", "")
        assert url.endswith(f"/docs/runbooks/{name}.md"), f"{name}: runbook_url {url!r}"
        page = RUNBOOKS / f"{name}.md"
        assert page.is_file(), f"{name}: {page} missing"
        assert page.read_text().startswith(f"# {name}\n")
    pages = {page.stem for page in RUNBOOKS.glob("*.md")} - {"README"}
    assert pages == set(alerts), "a runbook without an alert, or an alert without one"
    index = (RUNBOOKS / "README.md").read_text()
    assert all(f"({name}.md)" in index for name in alerts)


def test_the_overdue_alert_leaves_out_held_policies() -> None:
    """The operator exports no next-rotation time for a suspended or dry-run policy
    (tests/engine/test_idle.py); the rule also drops any such series left behind."""
    overdue = next(rule for rule in rules() if rule["alert"] == "RotatorRotationOverdue")
    expr = " ".join(overdue["expr"].split())
    assert "rotator_next_rotation_timestamp_seconds" in metric_names(expr)
    assert expr.endswith(
        "unless on (namespace, policy) max by (namespace, policy) (rotator_policy_suspended) == 1"
    )
