"""On the real broker, the click scenario's abrupt concept drift makes the drift service publish
a concept alert on the champion's error, and the model service reacts as the spec says
(``on_concept_drift = "add_challenger"``: a fresh challenger starts, announced on
``model-events`` with the alert's id as its reason).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from confluent_kafka import Message

from schemas.alerts import DriftAlert
from schemas.codec import decode
from schemas.model_events import ModelEvent
from schemas.spec import BUILTIN_DIR
from schemas.truth import GroundTruth
from services.cli import stack
from services.common.settings import KafkaSettings
from tests.integration.conftest import read_topic, wait_for

pytestmark = pytest.mark.integration

TIMELINE = Path(__file__).parent / "specs" / "abrupt-concept.toml"
RATE = 300
FEEDBACK_WINDOW_SECONDS = 5
PORT_OFFSET = 1400


@pytest.fixture(scope="module")
def drifting_run(kafka: KafkaSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
    tuple[str, Path]
]:
    """The whole pipeline with the producer streaming the abrupt-concept timeline; yields the
    topic prefix and the run's truth file."""
    home = tmp_path_factory.mktemp("drift-home")
    prefix = f"d{uuid.uuid4().hex[:10]}-"
    spec = home / "clicks-fast.toml"
    clicks = (BUILTIN_DIR / "clicks.toml").read_text()
    challengers = clicks.index("[[models.challengers]]")
    # The champion alone: a challenger could win the race before the drift, and alerts on a
    # model that no longer serves are (rightly) ignored.
    spec.write_text(
        (clicks[:challengers] + clicks[clicks.index("[models.promotion]"):])
        .replace("feedback_window_seconds = 30",
                 f"feedback_window_seconds = {FEEDBACK_WINDOW_SECONDS}"))
    truth = home / "truth.json"
    env = {
        **os.environ,
        "STREAMML_HOME": str(home),
        "STREAMML_TOPIC_PREFIX": prefix,
        "STREAMML_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "STREAMML_PRODUCER__TIMELINE": str(TIMELINE),
        "STREAMML_PRODUCER__TRUTH_PATH": str(truth),
        "STREAMML_PRODUCER__RATE": str(RATE),
        "STREAMML_PRODUCER__MAX_EVENTS": "15000",
        "STREAMML_PRODUCER__SEED": "5",
    }
    command = [sys.executable, "-m", "services.cli", "up", "--spec", str(spec),
               "--port-offset", str(PORT_OFFSET)]
    started = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180,
                             check=False)
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        yield prefix, truth
    finally:
        stack.down(home)


@pytest.mark.timeout(240)
def test_concept_drift_raises_an_alert_and_the_model_starts_a_challenger(
    drifting_run: tuple[str, Path], kafka: KafkaSettings
) -> None:
    prefix, truth_path = drifting_run

    truth = GroundTruth.model_validate_json(truth_path.read_bytes())
    drift = next(point for point in truth.drift_points if point.drift_kind == "concept")

    # Outcomes reach the detector in the order they became known: a click seconds after its
    # event, a non-click only when its window closes. So the last outcome before an alert may be
    # an event up to one feedback window older than the first post-drift outcome it saw.
    earliest = drift.event_time - timedelta(seconds=FEEDBACK_WINDOW_SECONDS)

    def concept_alerts_after_drift(messages: list[Message]) -> list[DriftAlert]:
        alerts = [decode(DriftAlert, message.value()) for message in messages]
        return [a for a in alerts if a.kind == "concept" and a.event_time is not None
                and a.event_time >= earliest]

    alert_messages = read_topic(kafka, f"{prefix}drift-alerts",
                                lambda got: bool(concept_alerts_after_drift(got)), timeout=150)
    first = min(concept_alerts_after_drift(alert_messages), key=lambda a: a.stream_position)
    assert first.event_time is not None
    late = (first.event_time - drift.event_time).total_seconds()
    print(f"\nconcept drift at event {drift.index}; first concept alert for it: {first.detector} "
          f"on {first.model}'s error, statistic {first.statistic:.3f} > threshold "
          f"{first.threshold:.3f}; its last outcome's event came {late:+.1f} s "
          f"(~{late * RATE:+.0f} events) from the drift point")

    # Every post-drift concept alert may start a challenger (fresh challengers are watched too);
    # the spec reacts to those on the champion.
    def reactions() -> list[tuple[DriftAlert, ModelEvent]]:
        alerts = {a.alert_id: a for a in concept_alerts_after_drift(
            read_topic(kafka, f"{prefix}drift-alerts", lambda _: False, timeout=3))}
        events = [decode(ModelEvent, message.value()) for message in read_topic(
            kafka, f"{prefix}model-events", lambda _: False, timeout=3)]
        return [(alerts[e.reason.removeprefix("drift alert ")], e) for e in events
                if e.kind == "challenger_started"
                and e.reason.removeprefix("drift alert ") in alerts]

    found: list[tuple[DriftAlert, ModelEvent]] = []

    def reacted() -> bool:
        found[:] = reactions()
        return bool(found)

    wait_for(reacted, timeout=90, what="a challenger started on a post-drift concept alert")
    alert, started = found[0]
    print(f"model reacted: {started.kind} {started.model} v{started.model_version} "
          f"beside champion {started.previous_model} ({started.reason})")
    assert started.previous_model == alert.model, "reacted to an alert on a non-champion"
