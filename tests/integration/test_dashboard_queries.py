"""Every query of the Grafana dashboard returns data from a real Prometheus scraping a real run.

``streamml up`` starts features, model, drift, metrics-sink and the producer on a fresh topic
prefix and free ports, plus Prometheus (scraping every second, with a configuration generated
for those ports and the repository's rules). The producer streams the clicks scenario through a
short drift timeline (``specs/short-drift.toml``: a covariate shift, then an abrupt concept
drift), some labels arrive late and a few invalid events are published, so the drift, data
quality and dead-letter panels have something to show. The spec's champion repeats the last
label it saw, so the logistic-regression challenger is promoted within a few hundred labels and
the promotion annotation has an event too.

Each panel target and annotation query is run against ``/api/v1/query`` with Grafana's variables
replaced, until every one returns data or a deadline passes; the test prints how many series
each returned.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer

from schemas.spec import BUILTIN_DIR
from services.cli import prometheus, stack
from services.cli.supervisor import METRICS_PORTS
from services.common.settings import KafkaSettings
from tests.grafana_dashboard import DashboardQuery, load, queries, substitute
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration

TIMELINE = Path(__file__).parent / "specs" / "short-drift.toml"
RATE = 150
SCRAPE_SECONDS = 1
GRAFANA_VARIABLES = {
    # Grafana's $__rate_interval is max($__interval + scrape interval, 4 x scrape interval).
    "__rate_interval": f"{4 * SCRAPE_SECONDS}s",
    "__interval": f"{SCRAPE_SECONDS}s",
    "__range": "30m",  # the dashboard's default time range
}
DATA_DEADLINE_SECONDS = 150.0
JOBS = {"prometheus", *METRICS_PORTS}
ALERTS = {"StreammlDriftDetected", "StreammlAccuracyDrop", "StreammlPredictionLatencyHigh",
          "StreammlConsumerLagHigh", "StreammlDeadLetterRateHigh"}
CHAMPION = """[models.champion]
name = "logreg"
estimator = "linear_model.LogisticRegression"
scale = true
"""
WEAK_CHAMPION_AND_CHALLENGER = """[models.champion]
name = "last_label"
estimator = "dummy.NoChangeClassifier"

[[models.challengers]]
name = "logreg"
estimator = "linear_model.LogisticRegression"
scale = true
"""


@dataclass(frozen=True)
class MonitoredRun:
    prometheus_port: int
    started_at: float
    """Wall-clock time (epoch seconds) before ``streamml up``."""


def _spec(home: Path) -> Path:
    """The clicks spec with a 5 s feedback window and a champion the challenger soon beats."""
    text = (BUILTIN_DIR / "clicks.toml").read_text()
    assert text.count(CHAMPION) == 1, "the clicks spec's champion changed; update this test"
    assert text.count("feedback_window_seconds = 30") == 1
    path = home / "clicks-monitored.toml"
    path.write_text(text.replace(CHAMPION, WEAK_CHAMPION_AND_CHALLENGER)
                    .replace("feedback_window_seconds = 30", "feedback_window_seconds = 5"))
    return path


def _free_port_offset() -> int:
    """A port offset under which the five metrics ports and Prometheus' are all free."""
    ports = [*METRICS_PORTS.values(), prometheus.PORT]
    for _ in range(200):
        offset = random.randrange(3000, 20000)
        if all(stack.port_is_free(port + offset) for port in ports):
            return offset
    raise AssertionError("found no free ports for the pipeline")


def _publish_invalid_events(kafka: KafkaSettings, topic: str) -> None:
    now = datetime.now(UTC).isoformat()
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers})
    for index in range(3):
        producer.produce(topic, key=b"u-bad", value=b'{"event_id": "broken", "event_time": ')
        producer.produce(topic, key=b"u-bad", value=orjson.dumps({
            "event_id": f"out-of-range-{index}", "event_time": now,
            "entity": {"user": "u-bad", "item": "i-bad"},
            "fields": {"device": "mobile", "hour": 99, "price": 1.0, "position": 1},
        }))
    assert producer.flush(10) == 0


@pytest.fixture(scope="module")
def monitored_run(kafka: KafkaSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
    MonitoredRun
]:
    """The whole pipeline and Prometheus, started with ``streamml up``, streaming drift."""
    assert shutil.which("prometheus"), "prometheus is needed: apt-get install prometheus"
    home = tmp_path_factory.mktemp("monitored-home")
    prefix = f"m{uuid.uuid4().hex[:10]}-"
    offset = _free_port_offset()
    env = {
        **os.environ,
        "STREAMML_HOME": str(home),
        "STREAMML_TOPIC_PREFIX": prefix,
        "STREAMML_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "STREAMML_PRODUCER__TIMELINE": str(TIMELINE),
        "STREAMML_PRODUCER__TRUTH_PATH": str(home / "truth.json"),
        "STREAMML_PRODUCER__RATE": str(RATE),
        "STREAMML_PRODUCER__LATE_SHARE": "0.02",
        "STREAMML_PRODUCER__SEED": "3",
    }
    command = [sys.executable, "-m", "services.cli", "up", "--spec", str(_spec(home)),
               "--port-offset", str(offset), "--scrape-interval", str(SCRAPE_SECONDS)]
    started_at = time.time()
    started = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180,
                             check=False)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        report = stack.status(home)
        assert report["services"]["prometheus"]["healthy"], report
        _publish_invalid_events(kafka, f"{prefix}events")
        yield MonitoredRun(prometheus.PORT + offset, started_at)
    finally:
        stack.down(home)


def _api(run: MonitoredRun, path: str, **params: str) -> Any:
    query = urllib.parse.urlencode(params)
    url = f"http://127.0.0.1:{run.prometheus_port}/api/v1/{path}?{query}"
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            document = orjson.loads(reply.read())
    except urllib.error.HTTPError as error:  # a bad query: fail now, with Prometheus' reason
        raise AssertionError(f"{url}: {error.code} {error.read().decode()}") from error
    assert document["status"] == "success", document
    return document["data"]


def _values(result: list[dict[str, Any]]) -> list[float]:
    return [float(series["value"][1]) for series in result]


def _returns_data(result: list[dict[str, Any]]) -> bool:
    """At least one series, and at least one of them with a number (not NaN or infinite)."""
    return any(math.isfinite(value) for value in _values(result))


def test_prometheus_scrapes_every_service_and_loads_the_rules(
    monitored_run: MonitoredRun,
) -> None:
    def targets_up() -> bool:
        active = _api(monitored_run, "targets")["activeTargets"]
        return {t["labels"]["job"] for t in active if t["health"] == "up"} == JOBS

    wait_for(targets_up, 30, f"every target ({sorted(JOBS)}) scraped and up")
    groups = _api(monitored_run, "rules")["groups"]
    alerts = {rule["name"] for group in groups for rule in group["rules"]
              if rule["type"] == "alerting"}
    assert alerts == ALERTS


@pytest.mark.timeout(360)
def test_every_dashboard_query_returns_data(monitored_run: MonitoredRun) -> None:
    found = queries(load())
    expressions = {query.where: substitute(query.expr, GRAFANA_VARIABLES) for query in found}
    assert not [expr for expr in expressions.values() if "$" in expr]

    def run_all() -> dict[str, list[dict[str, Any]]]:
        return {where: _api(monitored_run, "query", query=expr)["result"]
                for where, expr in expressions.items()}

    deadline = time.monotonic() + DATA_DEADLINE_SECONDS
    results = run_all()
    while not all(map(_returns_data, results.values())) and time.monotonic() < deadline:
        time.sleep(2)
        results = run_all()

    print(f"\n{'series':>6}  {'panel/query':<52} expression")
    for query in found:
        print(f"{len(results[query.where]):>6}  {query.where:<52} {expressions[query.where]}")
    empty = [where for where, result in results.items() if not _returns_data(result)]
    assert not empty, f"no data within {DATA_DEADLINE_SECONDS:.0f}s for: {empty}"
    _assert_annotation_times_are_in_the_run(found, results, monitored_run)


def _assert_annotation_times_are_in_the_run(
    found: list[DashboardQuery], results: dict[str, list[dict[str, Any]]], run: MonitoredRun,
) -> None:
    """Annotations placed by series value: milliseconds, between the start of the run and now."""
    now = time.time()
    for query in found:
        if query.value_is_time:
            for value in _values(results[query.where]):
                assert run.started_at - 1 <= value / 1000 <= now + 1, (query.where, value)


def test_the_drift_alert_rule_fires_on_the_runs_drift(monitored_run: MonitoredRun) -> None:
    def drift_alert_firing() -> bool:
        result = _api(monitored_run, "query",
                      query='ALERTS{alertname="StreammlDriftDetected", alertstate="firing"}')
        return bool(result["result"])

    wait_for(drift_alert_firing, DATA_DEADLINE_SECONDS, "StreammlDriftDetected to fire")
