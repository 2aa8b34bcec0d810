"""The thin pipeline end to end on the real broker, started with ``streamml up --no-producer``:
every event gets exactly one prediction, labels make the model learn, bad input is dead-lettered
and the features service keeps running, and kcat can publish events and read predictions.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Message

from schemas.codec import decode
from schemas.dead_letters import DeadLetterHeaders
from schemas.events import Label
from schemas.predictions import Outcome, Prediction
from schemas.spec import BUILTIN_DIR
from services.cli import stack
from services.common.kafka import ensure_topics, make_admin
from services.common.settings import KafkaSettings, Settings
from services.producer.client import EventClient
from services.producer.scenarios.clicks import ClicksScenario
from tests.integration.conftest import read_topic, topic_size, wait_for

pytestmark = pytest.mark.integration

PORT_OFFSET = 1000
EVENTS = 2000
LABEL_DELAY_EVENTS = 20


@dataclass(frozen=True)
class RunningPipeline:
    prefix: str
    home: Path
    settings: Settings

    def topic(self, name: str) -> str:
        return f"{self.prefix}{name}"


@pytest.fixture(scope="module")
def pipeline(kafka: KafkaSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
    RunningPipeline
]:
    """features, model, drift and metrics-sink running under a fresh prefix via the CLI."""
    home = tmp_path_factory.mktemp("streamml-home")
    prefix = f"p{uuid.uuid4().hex[:10]}-"
    spec = home / "clicks-fast.toml"
    # The test sends every label (negatives too) within 2 s of event time: learn each as it
    # comes, or nothing would be learned before the stream ends (``learn_at``, LabelSpec).
    text = (BUILTIN_DIR / "clicks.toml").read_text()
    assert 'learn_at = "window_close"' in text
    spec.write_text(text.replace("feedback_window_seconds = 30", "feedback_window_seconds = 5")
                    .replace('learn_at = "window_close"', 'learn_at = "label"'))
    env = {
        **os.environ,
        "STREAMML_HOME": str(home),
        "STREAMML_TOPIC_PREFIX": prefix,
        "STREAMML_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "STREAMML_LOG_LEVEL": "INFO",
    }
    command = [sys.executable, "-m", "services.cli", "up", "--no-producer", "--spec", str(spec),
               "--port-offset", str(PORT_OFFSET)]
    started = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180,
                             check=False)
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        yield RunningPipeline(prefix, home, Settings(kafka=kafka, topic_prefix=prefix))
    finally:
        stack.down(home)


def test_every_event_gets_exactly_one_prediction_and_the_model_learns(
    pipeline: RunningPipeline, kafka: KafkaSettings
) -> None:
    client = EventClient.connect(pipeline.settings, entity_key="user")
    scenario = ClicksScenario(seed=11, explicit_negatives=True)
    labels: list[Label] = []
    event_ids: list[str] = []
    for index, labelled in enumerate(scenario.events(datetime.now(UTC), 0.001)):
        if index >= EVENTS:
            break
        client.publish_event(labelled.event)
        event_ids.append(labelled.event.event_id)
        labels.append(Label(event_id=labelled.event.event_id,
                            label_time=datetime.now(UTC), label=labelled.label))
        if index >= LABEL_DELAY_EVENTS:
            client.publish_label(labels[index - LABEL_DELAY_EVENTS])
    for label in labels[-LABEL_DELAY_EVENTS:]:
        client.publish_label(label)
    client.flush()

    predictions_topic = pipeline.topic("predictions")
    messages = read_topic(kafka, predictions_topic, lambda got: len(got) >= EVENTS, timeout=120)
    predicted = [decode(Prediction, message.value()).event_id for message in messages]
    assert sorted(predicted) == sorted(event_ids), "some events got no prediction"

    outcomes_topic = pipeline.topic("outcomes")
    models = 2  # the clicks spec's champion and its challenger each give one outcome per label
    outcome_messages = read_topic(
        kafka, outcomes_topic, lambda got: len(got) >= models * EVENTS, timeout=120)
    every_outcome = [decode(Outcome, message.value()) for message in outcome_messages]
    assert {o.model for o in every_outcome} == {"logreg", "tree"}
    outcomes = [o for o in every_outcome if o.role == "champion"]  # what was served
    assert len({outcome.event_id for outcome in outcomes}) == EVENTS
    assert not [o.event_id for o in outcomes if o.timed_out], "every label was sent in time"
    # Nothing extra arrived in the meantime: exactly one prediction and one outcome per event.
    assert topic_size(kafka, predictions_topic) == EVENTS
    assert topic_size(kafka, outcomes_topic) == models * EVENTS

    positives = sum(1 for label in labels if label.label)
    majority_baseline = max(positives, EVENTS - positives) / EVENTS
    accuracy = sum(1 for outcome in outcomes if outcome.correct) / len(outcomes)
    print(f"prequential accuracy {accuracy:.3f} vs majority baseline {majority_baseline:.3f}")
    assert accuracy > majority_baseline + 0.03


def test_bad_events_go_to_dead_letters_and_features_keeps_running(
    pipeline: RunningPipeline, kafka: KafkaSettings
) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers})
    events_topic = pipeline.topic("events")
    now = datetime.now(UTC).isoformat()
    good_id = f"good-{uuid.uuid4().hex[:6]}"
    bad = {
        "malformed_json": b'{"event_id": "x", "event_time": ',
        "schema_invalid": orjson.dumps({"event_time": now, "entity": {"user": "u1"},
                                        "fields": {}}),
        "spec_invalid": orjson.dumps({
            "event_id": "bad-range", "event_time": now, "entity": {"user": "u1", "item": "i1"},
            "fields": {"device": "mobile", "hour": 99, "price": 1.0, "position": 1},
        }),
    }
    for payload in bad.values():
        producer.produce(events_topic, key=b"u1", value=payload)
    good = {"event_id": good_id, "event_time": now, "entity": {"user": "u1", "item": "i1"},
            "fields": {"device": "mobile", "hour": 12, "price": 3.5, "position": 2}}
    producer.produce(events_topic, key=b"u1", value=orjson.dumps(good))
    assert producer.flush(10) == 0

    def from_features(messages: list[Message]) -> list[Message]:
        return [m for m in messages
                if DeadLetterHeaders.from_kafka_headers(m.headers() or []).service == "features"]

    letters = from_features(read_topic(
        kafka, pipeline.topic("dead-letters"),
        lambda got: len(from_features(got)) >= len(bad), timeout=60,
    ))
    headers = [DeadLetterHeaders.from_kafka_headers(m.headers() or []) for m in letters]
    assert sorted(h.reason_code for h in headers) == sorted(bad)
    assert all(h.source_topic == events_topic and h.service == "features" for h in headers)
    assert sorted(m.value() or b"" for m in letters) == sorted(bad.values())

    predictions = read_topic(
        kafka, pipeline.topic("predictions"),
        lambda got: any(decode(Prediction, m.value()).event_id == good_id for m in got),
        timeout=60,
    )
    assert any(decode(Prediction, m.value()).event_id == good_id for m in predictions)
    health = stack.probe_health(9102 + PORT_OFFSET)
    assert health is not None and health["ok"], health


def test_kcat_lists_topics_publishes_events_and_reads_predictions(
    pipeline: RunningPipeline, kafka: KafkaSettings
) -> None:
    assert shutil.which("kcat"), "kcat is needed: scripts/install.sh installs it (apt-get)"
    listing = subprocess.run(["kcat", "-b", kafka.bootstrap_servers, "-L"], capture_output=True,
                             text=True, timeout=30, check=True).stdout
    for name in ("events", "labels", "features", "predictions", "outcomes", "drift-alerts",
                 "dead-letters", "model-snapshots"):
        assert f'topic "{pipeline.topic(name)}"' in listing

    event_id = f"kcat-{uuid.uuid4().hex[:6]}"
    event = {"schema_version": 1, "event_id": event_id,
             "event_time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
             "entity": {"user": "u-kcat", "item": "i-3"},
             "fields": {"device": "desktop", "hour": 9, "price": 20.0, "position": 1}}
    subprocess.run(["kcat", "-b", kafka.bootstrap_servers, "-P", "-t", pipeline.topic("events"),
                    "-k", "u-kcat"], input=orjson.dumps(event), timeout=30, check=True)

    def kcat_predictions() -> list[dict[str, object]]:
        out = subprocess.run(
            ["kcat", "-b", kafka.bootstrap_servers, "-C", "-t", pipeline.topic("predictions"),
             "-o", "beginning", "-e", "-q"], capture_output=True, timeout=30, check=True,
        ).stdout
        return [orjson.loads(line) for line in out.splitlines() if line.strip()]

    wait_for(lambda: any(p["event_id"] == event_id for p in kcat_predictions()), 60,
             "kcat to read the prediction")
    prediction = next(p for p in kcat_predictions() if p["event_id"] == event_id)
    assert prediction["model"] == "logreg"
    assert isinstance(prediction["score"], float)


def test_topics_are_created_idempotently_with_their_configs(
    kafka: KafkaSettings, topics: str
) -> None:
    assert ensure_topics(kafka, topics) == []
    metadata = make_admin(kafka).list_topics(timeout=10).topics
    assert len(metadata[f"{topics}events"].partitions) == len(
        metadata[f"{topics}labels"].partitions
    )
