"""``streamml evaluate-drift --from-topics``: a run's alerts read back from the real broker and
scored against its truth file (events and alerts are published here; no services run)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from schemas.alerts import DriftAlert
from schemas.codec import encode
from schemas.events import Event
from schemas.truth import GroundTruth
from services.cli.main import main
from services.common.kafka import make_producer
from services.common.settings import KafkaSettings
from services.producer.scenarios import ClicksScenario
from services.producer.scenarios.timeline import parse_timeline

pytestmark = pytest.mark.integration

RATE = 100.0
START = datetime(2026, 1, 5, 12, tzinfo=UTC)
TIMELINE = parse_timeline({"phases": [
    {"name": "baseline", "kind": "stationary", "events": 1000},
    {"name": "tablets", "kind": "covariate_shift", "events": 1000, "device_mix": {"tablet": 1}},
]})


def test_a_live_runs_alerts_are_scored_against_its_truth(
    kafka: KafkaSettings, topics: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    prefix = topics
    scenario = ClicksScenario(seed=2, timeline=TIMELINE)
    truth: GroundTruth = scenario.ground_truth(START, 1.0 / RATE)
    truth_path = tmp_path / "truth.json"
    truth_path.write_bytes(orjson.dumps(truth.model_dump(mode="json")))

    producer = make_producer(kafka)
    for index, labelled in enumerate(scenario.events(truth.start, 1.0 / RATE)):
        if index == 2000:
            break
        event: Event = labelled.event
        producer.produce(f"{prefix}events", key=event.entity["user"].encode(),
                         value=encode(event))

    def alert(kind: str, seconds: float) -> DriftAlert:
        return DriftAlert.model_validate({
            "alert_id": f"a-{kind}-{seconds}", "kind": kind, "detector": "PSI",
            "target": "feature:device", "statistic": 0.5, "threshold": 0.2,
            "stream_position": 1, "detected_at": truth.start + timedelta(seconds=seconds)})

    # A false alarm at event 500, the covariate shift seen at event 1250 (12.5 s).
    for raised in (alert("prediction", 5.0), alert("covariate", 12.5)):
        producer.produce(f"{prefix}drift-alerts", key=raised.target.encode(),
                         value=encode(raised))
    producer.produce(f"{prefix}drift-alerts", key=b"x", value=b"not an alert")
    assert producer.flush(30) == 0

    monkeypatch.setenv("STREAMML_KAFKA__BOOTSTRAP_SERVERS", kafka.bootstrap_servers)
    out = tmp_path / "live.json"
    assert main(["evaluate-drift", "--from-topics", prefix, "--truth", str(truth_path),
                 "--json", str(out)]) == 0

    document = orjson.loads(out.read_bytes())
    [run] = document["runs"]
    assert run["events"] == 2000
    [tablets] = document["summary"]
    assert (tablets["phase"], tablets["detected"], tablets["delays_events"]) == (
        "tablets", 1, [250])
    assert tablets["delays_seconds"] == [pytest.approx(2.5)]
    assert document["false_alarms"]["alarms"] == 1
    assert document["false_alarms"]["stationary_events"] == 1000
