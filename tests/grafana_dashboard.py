"""The PromQL of the Grafana dashboards: every panel target and annotation query, and Grafana's
variables replaced by concrete values so Prometheus can run them (tests only).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD_DIR = ROOT / "deploy" / "grafana" / "dashboards"
DASHBOARD = DASHBOARD_DIR / "streamml.json"
DATASOURCE_UID = "streamml-prometheus"
_VARIABLE = re.compile(r"\$\{?(__[a-z_]+)\}?")


@dataclass(frozen=True)
class DashboardQuery:
    """One query: where it is (``panel/refId`` or ``annotation``), its PromQL and its options."""

    where: str
    expr: str
    datasource_uid: str | None
    value_is_time: bool = False
    """An annotation whose series value is its time in milliseconds (``useValueForTime``)."""


def load(path: Path = DASHBOARD) -> dict[str, Any]:
    """A dashboard JSON document."""
    document: dict[str, Any] = orjson.loads(path.read_bytes())
    return document


def panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel that is not a row, including those nested in collapsed rows."""
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def queries(dashboard: Mapping[str, Any]) -> list[DashboardQuery]:
    """Every Prometheus panel target and annotation query of ``dashboard``, in order."""
    found = [
        DashboardQuery(f"{panel['title']}/{target.get('refId', '?')}", str(target.get("expr", "")),
                       _uid(target.get("datasource") or panel.get("datasource")))
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
    ]
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if annotation.get("builtIn"):
            continue
        found.append(DashboardQuery(
            f"annotation {annotation['name']}", str(annotation.get("expr", "")),
            _uid(annotation.get("datasource")), bool(annotation.get("useValueForTime")),
        ))
    return found


def substitute(expr: str, variables: Mapping[str, str]) -> str:
    """``expr`` with Grafana's ``$__name`` / ``${__name}`` variables replaced.

    Raises KeyError naming a variable ``variables`` has no value for.
    """
    return _VARIABLE.sub(lambda match: variables[match.group(1)], expr)


def _uid(datasource: Any) -> str | None:
    return str(datasource["uid"]) if isinstance(datasource, dict) and "uid" in datasource else None
