"""The drift service killed mid-stream on the real broker: restarted from its checkpoint, it
raises exactly the alerts of a run that never stopped, none of them twice.

Feature vectors and champion outcomes are published straight to the drift service's inputs; every
watched signal (a feature, the label rate, the scores, the errors) changes at event 3,000 and back
at event 7,000. Checkpoints are taken only after alerts here (the interval is an hour), so the
service is killed with the messages after its last alert processed and not committed. Each
monitor's alerts depend only on its own topic's order, so the alerts read back must equal those
of the same records fed to the drift logic in this process.
"""

from __future__ import annotations

import random
import urllib.request
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer
from prometheus_client import CollectorRegistry

from schemas.alerts import DriftAlert
from schemas.codec import decode
from schemas.spec import load_spec
from services.cli.process import ServiceProcess
from services.common.kafka import ensure_topics
from services.common.settings import KafkaSettings
from services.drift.handler import DriftHandler, DriftMetrics
from tests.integration.conftest import read_topic, wait_for
from tests.unit.fakes import FakeProducer, message
from tests.unit.test_drift_handler import champion_outcome, features

pytestmark = pytest.mark.integration

SPEC = """
name = "restart"
entity_keys = ["user"]

[fields.x]
type = "float"

[fields.device]
type = "categorical"

[label]
type = "binary"
feedback_window_seconds = 1
on_timeout = "drop"

[models.champion]
name = "logreg"
estimator = "linear_model.LogisticRegression"
"""

FIRST, SECOND = range(1, 5001), range(5001, 10001)
CHANGED = range(3001, 7001)


def records(events: range, seed: int = 21) -> list[tuple[str, bytes]]:
    """Feature vectors and outcomes of ``events``, alternating; the same for the same events."""
    out = []
    for n in events:
        rng = random.Random(seed * 1_000_003 + n)
        changed = n in CHANGED
        out.append(("features", features(n, rng.gauss(1.0 if changed else 0.0, 1.0))))
        label = rng.random() < (0.5 if changed else 0.3)
        score = rng.betavariate(3, 4) if changed else rng.betavariate(2, 5)
        correct = rng.random() >= (0.6 if changed else 0.1)
        out.append(("outcomes", champion_outcome(n, label, score, correct)))
    return out


def alert_keys(alerts: list[DriftAlert]) -> list[tuple[str, str, int]]:
    return sorted((alert.kind, alert.target, alert.stream_position) for alert in alerts)


def uninterrupted(spec_path: Path) -> list[tuple[str, str, int]]:
    producer = FakeProducer()
    handler = DriftHandler(load_spec(str(spec_path)), producer, "drift-alerts",
                           DriftMetrics(CollectorRegistry()))
    for offset, (topic, value) in enumerate(records(FIRST) + records(SECOND)):
        handler.handle(message(topic, value, offset=offset))
    return alert_keys([decode(DriftAlert, r.value) for r in producer.on("drift-alerts")
                       if r.value is not None])


def publish(kafka: KafkaSettings, prefix: str, batch: list[tuple[str, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers})
    for topic, value in batch:  # one key: each topic's records stay in order on one partition
        producer.produce(f"{prefix}{topic}", key=b"u1", value=value)
    assert producer.flush(30) == 0


def health(drift: ServiceProcess) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{drift.metrics_port}/health",
                                timeout=5) as answer:
        details: dict[str, Any] = orjson.loads(answer.read())
        return details


def seen(drift: ServiceProcess) -> tuple[int, int]:
    """Feature vectors and outcomes the running drift service's monitors have taken in."""
    monitors = health(drift)["monitors"]
    return monitors["covariate"], monitors["label"] or 0


@pytest.mark.timeout(300)
def test_a_drift_service_killed_mid_stream_raises_each_alert_once(
    kafka: KafkaSettings, tmp_path: Path,
) -> None:
    spec_path = tmp_path / "restart.toml"
    spec_path.write_text(SPEC)
    expected = uninterrupted(spec_path)
    first_part = [key for key in expected if key[2] <= FIRST[-1]]
    assert len(first_part) >= 3 and len(expected) > len(first_part), expected
    prefix = f"dr{uuid.uuid4().hex[:8]}-"
    ensure_topics(kafka, prefix)
    env = {"STREAMML_TOPIC_PREFIX": prefix, "STREAMML_SPEC": str(spec_path),
           "STREAMML_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
           "STREAMML_DRIFT__CHECKPOINT_INTERVAL_SECONDS": "3600"}
    log = tmp_path / "drift.log"
    drift = ServiceProcess("services.drift", env, log).start()
    alerts_topic = f"{prefix}drift-alerts"
    try:
        publish(kafka, prefix, records(FIRST))
        wait_for(lambda: seen(drift) == (len(FIRST), len(FIRST)), timeout=120,
                 what="the drift service to take in the first 5,000 events")
        committed = read_topic(kafka, alerts_topic, lambda got: len(got) >= len(first_part),
                               timeout=30)
        assert len(committed) == len(first_part)
        drift.kill()  # the messages after the last alert were processed, not committed
        drift.start()
        assert "restored the drift monitors" in log.read_text()
        publish(kafka, prefix, records(SECOND))
        wait_for(lambda: seen(drift) == (FIRST[-1] + len(SECOND),) * 2, timeout=120,
                 what="the restarted drift service to take in every event")
        assert drift.stop() == 0
    finally:
        drift.stop()
    everything = read_topic(kafka, alerts_topic, lambda got: len(got) > len(expected), timeout=10)
    found = alert_keys([decode(DriftAlert, m.value()) for m in everything])
    repeated = [key for key, count in Counter(found).items() if count > 1]
    assert not repeated, f"alerts raised twice: {repeated}"
    assert found == expected
