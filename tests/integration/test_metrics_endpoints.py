"""Every service's ``/metrics`` passes ``promtool check metrics`` while traffic flows.

All five services run as real processes on the local broker under a fresh topic prefix, each on
a free metrics port. The producer streams the click-through scenario; an invalid event and a
concept-drift alert are published too, so that every labelled series of the metrics sink exists
(dead letters, alerts, model events) before the endpoints are checked. ``promtool`` must be
installed: without it the test fails.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from schemas.alerts import DriftAlert
from schemas.codec import encode
from schemas.spec import BUILTIN_DIR, load_spec
from services.cli.process import ServiceProcess
from services.common.kafka import ensure_topics, make_producer
from services.common.settings import KafkaSettings

pytestmark = pytest.mark.integration

MODULES = {
    "features": "services.features", "model": "services.model", "drift": "services.drift",
    "metrics-sink": "services.metrics_sink", "producer": "services.producer",
}
FEEDBACK_WINDOW_SECONDS = 2  # non-clicks time out quickly, so both kinds of outcome exist
TRAFFIC_DEADLINE_SECONDS = 40.0

Series = tuple[str, dict[str, str]]
"""A sample name and labels that some sample of that name must carry (others may be present)."""


@pytest.fixture(scope="module")
def promtool() -> str:
    """The ``promtool`` executable; fails the test when it is not installed."""
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed (Debian: apt-get install prometheus)")
    return path


@dataclass(frozen=True)
class RunningServices:
    """The five services of one pipeline under ``prefix``, with the champion's name."""

    processes: dict[str, ServiceProcess]
    prefix: str
    champion: str


@pytest.fixture(scope="module")
def running(
    kafka: KafkaSettings, tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningServices]:
    """The five services on fresh topics with the clicks spec (short feedback window): the four
    consumers started together, then the producer; all stopped together (SIGTERM) at the end."""
    home = tmp_path_factory.mktemp("metrics-endpoints")
    prefix = f"me{uuid.uuid4().hex[:10]}-"
    ensure_topics(kafka, prefix)
    spec_path = home / "clicks-fast.toml"
    spec_path.write_text((BUILTIN_DIR / "clicks.toml").read_text().replace(
        "feedback_window_seconds = 30", f"feedback_window_seconds = {FEEDBACK_WINDOW_SECONDS}"))
    env = {
        "STREAMML_TOPIC_PREFIX": prefix,
        "STREAMML_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "STREAMML_SPEC": str(spec_path),
        "STREAMML_PRODUCER__RATE": "100",
        "STREAMML_PRODUCER__LABEL_DELAY": orjson.dumps(
            {"distribution": "uniform", "low": 0.1, "high": 0.5}).decode(),
    }
    processes = {name: ServiceProcess(module, env, home / f"{name}.log")
                 for name, module in MODULES.items()}
    try:
        with pytest.MonkeyPatch.context() as patch, ThreadPoolExecutor(len(processes)) as pool:
            patch.chdir(home)  # the features worker keeps its local data under its cwd
            consumers = [process for name, process in processes.items() if name != "producer"]
            list(pool.map(lambda process: process.start(), consumers))
            processes["producer"].start()
        yield RunningServices(processes, prefix, load_spec(str(spec_path)).models.champion.name)
    finally:
        with ThreadPoolExecutor(len(processes)) as pool:
            list(pool.map(lambda process: process.stop(), processes.values()))


def scrape(process: ServiceProcess) -> bytes:
    """The body of the service's ``/metrics``."""
    url = f"http://127.0.0.1:{process.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as reply:
        body: bytes = reply.read()
    return body


def missing(body: bytes, expected: list[Series]) -> list[Series]:
    """The expected series that no sample of ``body`` matches."""
    samples = [(sample.name, sample.labels)
               for family in text_string_to_metric_families(body.decode())
               for sample in family.samples]
    return [(name, labels) for name, labels in expected
            if not any(got == name and labels.items() <= got_labels.items()
                       for got, got_labels in samples)]


def expected_series(champion: str) -> dict[str, list[Series]]:
    """Per service, the labelled series that traffic (and the injected messages) must create."""
    model = {"model": champion}
    return {
        "metrics-sink": [
            ("streamml_predictions_total", {**model, "version": "1"}),
            ("streamml_outcomes_total", {**model, "version": "1", "timed_out": "false"}),
            ("streamml_outcomes_total", {**model, "version": "1", "timed_out": "true"}),
            ("streamml_event_to_prediction_seconds_bucket", model),
            ("streamml_label_delay_seconds_bucket", model),
            ("streamml_rolling_accuracy_ratio", model),
            ("streamml_rolling_log_loss", model),
            ("streamml_rolling_roc_auc_ratio", model),
            ("streamml_label_coverage_ratio", model),
            ("streamml_drift_alerts_total", {"kind": "concept", "detector": "ADWIN"}),
            ("streamml_last_drift_alert_timestamp_seconds", {"kind": "concept"}),
            ("streamml_model_events_total", {"kind": "challenger_started"}),
            ("streamml_dead_letters_total", {"source": "events", "reason": "malformed_json"}),
            ("streamml_consumer_lag_messages", {"service": "metrics-sink", "topic": "outcomes"}),
        ],
        "features": [
            ("streamml_features_events_processed_total", {}),
            ("streamml_features_invalid_events_total", {}),
        ],
        "model": [
            ("streamml_model_predictions_total", {**model, "role": "champion"}),
            ("streamml_model_labels_learned_total", {**model, "timed_out": "true"}),
            ("streamml_model_changes_total", {"kind": "challenger_started"}),
        ],
        "drift": [("streamml_drift_observations_total", {"kind": "concept"})],
        "producer": [("streamml_producer_published_messages_total", {"topic": "labels"})],
    }


def inject_invalid_event_and_drift_alert(kafka: KafkaSettings, prefix: str,
                                         champion: str) -> None:
    """One event that is not JSON (a dead letter) and one concept-drift alert on the champion
    (the model starts a fresh challenger: a model event)."""
    producer = make_producer(kafka)
    producer.produce(f"{prefix}events", value=b"{not json", key=b"u-broken")
    alert = DriftAlert(
        alert_id="metrics-endpoints", kind="concept", detector="ADWIN",
        target=f"error:{champion}", model=champion, statistic=0.5, threshold=0.002,
        stream_position=1, detected_at=datetime.now(UTC),
    )
    producer.produce(f"{prefix}drift-alerts", value=encode(alert),
                     key=alert.target.encode())
    assert producer.flush(10) == 0


def test_every_service_serves_metrics_that_promtool_accepts(
    promtool: str, running: RunningServices, kafka: KafkaSettings,
) -> None:
    inject_invalid_event_and_drift_alert(kafka, running.prefix, running.champion)
    expected = expected_series(running.champion)
    deadline = time.monotonic() + TRAFFIC_DEADLINE_SECONDS
    while True:
        bodies = {name: scrape(process) for name, process in running.processes.items()}
        absent = {name: gaps for name in expected if (gaps := missing(bodies[name],
                                                                      expected[name]))}
        if not absent or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not absent, f"series still missing after {TRAFFIC_DEADLINE_SECONDS:.0f}s: {absent}"

    for name, body in bodies.items():
        checked = subprocess.run(
            [promtool, "check", "metrics"], input=body, capture_output=True, timeout=30,
            check=False,
        )
        problems = (checked.stdout + checked.stderr).decode().strip()
        assert (checked.returncode, problems) == (0, ""), f"{name}: {problems}"


def test_end_to_end_latency_buckets_run_from_a_millisecond_to_ten_seconds(
    running: RunningServices,
) -> None:
    deadline = time.monotonic() + TRAFFIC_DEADLINE_SECONDS
    bounds: list[float] = []
    while not bounds and time.monotonic() < deadline:
        body = scrape(running.processes["metrics-sink"]).decode()
        bounds = sorted(
            float(sample.labels["le"])
            for family in text_string_to_metric_families(body) for sample in family.samples
            if sample.name == "streamml_event_to_prediction_seconds_bucket"
            and sample.labels.get("model") == running.champion
        )
        if not bounds:
            time.sleep(0.5)
    assert bounds, "no event-to-prediction latency was recorded"
    assert (bounds[0], bounds[-2], bounds[-1]) == (0.001, 10.0, float("inf"))


def test_the_sink_health_reports_each_models_rolling_quality(running: RunningServices) -> None:
    url = f"http://127.0.0.1:{running.processes['metrics-sink'].metrics_port}/health"
    deadline = time.monotonic() + TRAFFIC_DEADLINE_SECONDS
    measures: dict[str, float] = {}
    while set(measures) != {"label_coverage", "accuracy", "majority_baseline", "log_loss",
                            "roc_auc", "precision", "recall"}:
        assert time.monotonic() < deadline, f"incomplete quality in /health: {measures}"
        time.sleep(0.5)
        with urllib.request.urlopen(url, timeout=5) as reply:
            measures = orjson.loads(reply.read())["quality"].get(running.champion, {})
    assert all(0.0 <= measures[name] <= 1.0
               for name in ("label_coverage", "accuracy", "roc_auc", "precision", "recall"))
    assert 0.5 <= measures["majority_baseline"] <= 1.0  # binary: the larger class's share
    assert measures["log_loss"] > 0.0
