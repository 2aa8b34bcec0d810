"""A label that does not fit the spec goes to dead-letters; the model service keeps running.

The real model service with a regression spec reads feature vectors and labels from the broker;
one label is a string. It is dead-lettered with its reason when it arrives, and the labels
around it are learned by the same process (no crash, no restart).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import Producer

from schemas.codec import decode, encode
from schemas.dead_letters import DeadLetterHeaders
from schemas.events import Label, LabelValue
from schemas.features import FeatureVector
from schemas.predictions import Outcome
from services.cli.process import ServiceProcess
from services.common.kafka import ensure_topics
from services.common.settings import KafkaSettings
from tests.integration.conftest import read_topic

pytestmark = pytest.mark.integration

SPEC = """
name = "regression_labels"
entity_keys = ["user"]

[fields.x]
type = "float"
min = -1000
max = 1000

[label]
type = "regression"
feedback_window_seconds = 60

[models.champion]
name = "linreg"
estimator = "linear_model.LinearRegression"
"""


def test_a_string_label_for_a_regression_spec_is_dead_lettered_and_the_service_goes_on(
    kafka: KafkaSettings, tmp_path: Path,
) -> None:
    prefix = f"bl{uuid.uuid4().hex[:8]}-"
    ensure_topics(kafka, prefix)
    spec = tmp_path / "regression.toml"
    spec.write_text(SPEC)
    env = {"STREAMML_TOPIC_PREFIX": prefix, "STREAMML_SPEC": str(spec),
           "STREAMML_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
           "STREAMML_MODEL__LABEL_HOLD_SECONDS": "1"}
    log = tmp_path / "model.log"
    model = ServiceProcess("services.model", env, log).start()
    start = datetime.now(UTC)
    values: dict[str, LabelValue] = {f"r-{n}": float(n) for n in range(6)}
    values["r-2"] = "high"
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers})
    try:
        for n, (event_id, value) in enumerate(values.items()):
            at = start + timedelta(seconds=n)
            vector = FeatureVector(event_id=event_id, event_time=at, entity={"user": "u"},
                                   features={"x": float(n)}, ingested_at=at, computed_at=at)
            producer.produce(f"{prefix}features", key=b"u", value=encode(vector))
            label = Label(event_id=event_id, label_time=at + timedelta(seconds=0.5), label=value)
            producer.produce(f"{prefix}labels", key=event_id.encode(), value=encode(label))
        assert producer.flush(30) == 0
        outcomes = read_topic(kafka, f"{prefix}outcomes", lambda got: len(got) >= 5,
                              timeout=120)
        dead = read_topic(kafka, f"{prefix}dead-letters", lambda got: len(got) >= 1, timeout=60)
    finally:
        exit_code = model.stop()
    assert exit_code == 0, f"the model service did not stop cleanly; see {log}"
    assert log.read_text().count('{"ready":"model"') == 1
    assert sorted(decode(Outcome, m.value()).event_id for m in outcomes) == [
        "r-0", "r-1", "r-3", "r-4", "r-5"]
    [letter] = dead
    headers = DeadLetterHeaders.from_kafka_headers(letter.headers() or [])
    assert (headers.service, headers.source_topic, headers.reason_code, headers.error_class) == (
        "model", f"{prefix}labels", "spec_invalid", "InvalidLabel")
    assert headers.reason == ("label for r-2: 'high' is not a regression label (expected a "
                              "finite number)")
    assert decode(Label, letter.value()).label == "high"  # the original bytes, unchanged
