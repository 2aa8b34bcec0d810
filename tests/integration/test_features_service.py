"""The features service on the real broker: a SIGKILLed worker recovers its windows from the
changelog, and two workers in one group compute the same vectors as one.

All three runs publish the same events (same ids, event times and fields) under their own topic
prefix and compare the vectors they produce, ignoring only processing timestamps.
"""

from __future__ import annotations

import random
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from schemas.codec import decode
from schemas.events import Event
from schemas.features import FeatureVector
from services.cli.process import ServiceProcess
from services.common.kafka import ensure_topics
from services.common.settings import KafkaSettings, Settings
from services.producer.client import EventClient
from tests.integration.conftest import read_topic

pytestmark = pytest.mark.integration

SPEC = Path(__file__).with_name("specs") / "user_features.toml"
EVENTS = 3000


@pytest.fixture(scope="module")
def events() -> list[Event]:
    """One deterministic stream: 40 users, events 10 ms apart in event time."""
    rng = random.Random(2026)
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    return [
        Event(
            event_id=f"ev-{n}", event_time=base + timedelta(milliseconds=10 * n),
            entity={"user": f"u{rng.randrange(40)}", "item": f"i{rng.randrange(25)}"},
            fields={"device": rng.choice(["mobile", "desktop", "tablet"]),
                    "hour": rng.randrange(24), "price": round(rng.uniform(1, 500), 2),
                    "position": rng.randint(1, 10)},
        )
        for n in range(EVENTS)
    ]


def worker(kafka: KafkaSettings, prefix: str, log: Path) -> ServiceProcess:
    return ServiceProcess("services.features", {
        "STREAMML_TOPIC_PREFIX": prefix,
        "STREAMML_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "STREAMML_SPEC": str(SPEC),
    }, log)


def publish(kafka: KafkaSettings, prefix: str, events: list[Event], rate: float | None) -> None:
    client = EventClient.connect(Settings(kafka=kafka, topic_prefix=prefix), entity_key="user")
    started = time.monotonic()
    for n, event in enumerate(events):
        if rate is not None:
            delay = started + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # pacing a producer, not waiting for a result
        client.publish_event(event)
    client.flush()


def vectors(kafka: KafkaSettings, prefix: str) -> dict[str, list[dict[str, Any]]]:
    """Every vector on ``features`` by event id (features only), once all ids are there."""
    seen: set[str] = set()
    read = [0]

    def complete(messages: list[Any]) -> bool:
        for message in messages[read[0]:]:
            seen.add(orjson.loads(message.value())["event_id"])
        read[0] = len(messages)
        return len(seen) >= EVENTS

    by_id: dict[str, list[dict[str, Any]]] = {}
    for message in read_topic(kafka, f"{prefix}features", complete, timeout=120):
        vector = decode(FeatureVector, message.value())
        by_id.setdefault(vector.event_id, []).append(dict(vector.features))
    return by_id


def processed(port: int | None) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        for family in text_string_to_metric_families(reply.read().decode()):
            for sample in family.samples:
                if sample.name == "streamml_features_events_processed_total":
                    return float(sample.value)
    return 0.0


@pytest.fixture(scope="module")
def reference(
    kafka: KafkaSettings, events: list[Event], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, list[dict[str, Any]]]:
    """The vectors of one uninterrupted worker."""
    prefix = f"fref{int(time.time() * 1000) % 10**8}-"
    ensure_topics(kafka, prefix)
    one = worker(kafka, prefix, tmp_path_factory.mktemp("ref") / "features.log").start()
    try:
        publish(kafka, prefix, events, rate=None)
        result = vectors(kafka, prefix)
    finally:
        assert one.stop() == 0, "SIGTERM must end the worker cleanly"
    assert len(result) == EVENTS
    assert all(len(copies) == 1 for copies in result.values()), "an uninterrupted run duplicates"
    return result


def test_a_sigkilled_worker_restarts_with_the_same_aggregates(
    kafka: KafkaSettings, topics: str, events: list[Event],
    reference: dict[str, list[dict[str, Any]]], tmp_path: Path,
) -> None:
    first = worker(kafka, topics, tmp_path / "features.log").start()
    publisher = threading.Thread(target=publish, args=(kafka, topics, events, 1000.0))
    publisher.start()
    read_topic(kafka, f"{topics}features", lambda got: len(got) >= EVENTS // 3, timeout=60)
    first.kill()  # mid-stream: a third of the vectors are out, the rest still being published
    publisher.join()
    second = worker(kafka, topics, tmp_path / "features.log").start()
    try:
        recovered = vectors(kafka, topics)
    finally:
        second.stop()
    assert set(recovered) == set(reference)
    differing = [event_id for event_id, copies in recovered.items()
                 if any(copy != reference[event_id][0] for copy in copies)]
    duplicates = sum(len(copies) - 1 for copies in recovered.values())
    print(f"after SIGKILL: {len(recovered)} events, {duplicates} redelivered vectors, "
          f"{len(differing)} differing from the uninterrupted run")
    assert differing == []


def test_two_workers_in_one_group_produce_the_same_vectors_as_one(
    kafka: KafkaSettings, topics: str, events: list[Event],
    reference: dict[str, list[dict[str, Any]]], tmp_path: Path,
) -> None:
    pair = [worker(kafka, topics, tmp_path / f"features-{n}.log") for n in (1, 2)]
    for process in pair:
        process.start()
    try:
        publish(kafka, topics, events, rate=None)
        both = vectors(kafka, topics)
        shares = [processed(process.metrics_port) for process in pair]
    finally:
        for process in pair:
            process.stop()
    print(f"two workers: vectors emitted per worker {shares}")
    assert all(share > 0 for share in shares), "both workers must have had partitions"
    assert set(both) == set(reference)
    assert all(copy == reference[event_id][0] for event_id, copies in both.items()
               for copy in copies)
