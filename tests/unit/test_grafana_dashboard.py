"""The Grafana dashboard is well formed: every query names the provisioned datasource uid, the
panels tile the grid without overlapping, the rows the pipeline needs are there, and every metric
a query (or an alerting rule) reads is one a service declares.

Whether each query returns data is tested against a real Prometheus in
tests/integration/test_dashboard_queries.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.grafana_dashboard import DASHBOARD, DATASOURCE_UID, load, panels, queries

ROOT = Path(__file__).resolve().parents[2]
DATASOURCES = ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
RULES = ROOT / "deploy" / "prometheus" / "rules" / "streamml.yml"
ROWS = ["Pipeline health and lag", "Latency percentiles", "Model quality", "Drift by feature",
        "Data quality"]
GRID_COLUMNS = 24
_DECLARED = re.compile(r"\"(streamml_[a-z0-9_]+)\"")
_USED = re.compile(r"\bstreamml_[a-z0-9_]+")
_HISTOGRAM_SERIES = ("_bucket", "_count", "_sum")


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return load(DASHBOARD)


def _declared_metrics() -> set[str]:
    """Metric names passed as string literals anywhere under services/."""
    return {
        name
        for path in (ROOT / "services").rglob("*.py")
        for name in _DECLARED.findall(path.read_text(encoding="utf-8"))
    }


def _undeclared(expr: str, declared: set[str]) -> list[str]:
    missing = []
    for name in _USED.findall(expr):
        base = next((name.removesuffix(s) for s in _HISTOGRAM_SERIES if name.endswith(s)), name)
        if name in declared or base in declared:
            continue
        if name.endswith("_") and any(d.startswith(name) for d in declared):
            continue  # the stem of a regular expression such as streamml_rolling_(mae|rmse)
        missing.append(name)
    return missing


def test_the_datasource_uid_is_the_provisioned_one() -> None:
    datasources = yaml.safe_load(DATASOURCES.read_text(encoding="utf-8"))["datasources"]
    assert [source["uid"] for source in datasources] == [DATASOURCE_UID]


def test_every_query_uses_the_fixed_datasource_uid(dashboard: dict[str, Any]) -> None:
    found = queries(dashboard)
    assert len(found) >= 20
    wrong = [query.where for query in found if query.datasource_uid != DATASOURCE_UID]
    assert not wrong, f"queries without datasource uid {DATASOURCE_UID}: {wrong}"
    for panel in panels(dashboard):
        assert panel["datasource"]["uid"] == DATASOURCE_UID, panel["title"]


def test_every_panel_has_queries_with_distinct_ref_ids(dashboard: dict[str, Any]) -> None:
    for panel in panels(dashboard):
        targets = panel.get("targets", [])
        assert targets, f"panel {panel['title']!r} has no query"
        assert all(target.get("expr", "").strip() for target in targets), panel["title"]
        ref_ids = [target["refId"] for target in targets]
        assert len(set(ref_ids)) == len(ref_ids), panel["title"]


def test_annotations_mark_drift_alerts_and_promotions(dashboard: dict[str, Any]) -> None:
    annotations = {query.where: query for query in queries(dashboard)
                   if query.where.startswith("annotation ")}
    drift = annotations["annotation Drift alerts"]
    promotions = annotations["annotation Promotions"]
    assert "streamml_last_drift_alert_timestamp_seconds" in drift.expr
    assert 'kind="promoted"' in promotions.expr
    # Timestamps in seconds, multiplied into the milliseconds Grafana expects.
    for annotation in (drift, promotions):
        assert annotation.value_is_time and annotation.expr.rstrip().endswith("* 1000")


def test_rows_in_order(dashboard: dict[str, Any]) -> None:
    rows = [panel["title"] for panel in dashboard["panels"] if panel["type"] == "row"]
    assert rows == ROWS


def test_panels_tile_the_grid_without_overlapping(dashboard: dict[str, Any]) -> None:
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(set(ids)) == len(ids), "panel ids must be unique"
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= GRID_COLUMNS, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]


def test_dashboard_queries_read_only_declared_metrics(dashboard: dict[str, Any]) -> None:
    declared = _declared_metrics()
    missing = {query.where: _undeclared(query.expr, declared) for query in queries(dashboard)}
    assert not {where: names for where, names in missing.items() if names}


def test_alerting_rules_read_only_declared_metrics() -> None:
    declared = _declared_metrics()
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    missing = {rule["alert"]: _undeclared(rule["expr"], declared)
               for group in groups for rule in group["rules"]}
    assert not {alert: names for alert, names in missing.items() if names}


def test_undeclared_metrics_are_caught() -> None:
    declared = {"streamml_rolling_mae", "streamml_event_to_prediction_seconds"}
    assert _undeclared("rate(streamml_event_to_prediction_seconds_bucket[5m])", declared) == []
    assert _undeclared('{__name__=~"streamml_rolling_(mae|rmse)"}', declared) == []
    assert _undeclared("streamml_rolling_accuracy", declared) == ["streamml_rolling_accuracy"]
