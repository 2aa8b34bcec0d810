"""The features service on the real broker: a SIGKILLed worker recovers its windows from the
changelog, two workers in one group compute the same vectors as one, and events that are not in
their entity's home partition are re-homed and get the same vectors too.

Every run publishes the same events (same ids, event times and fields) under its own topic
prefix and compares the vectors it produces, ignoring only processing timestamps.
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
from confluent_kafka import KafkaError, Message
from prometheus_client.parser import text_string_to_metric_families

from schemas.codec import decode
from schemas.events import Event
from schemas.features import FeatureVector
from schemas.topics import PIPELINE_PARTITIONS
from services.cli.process import ServiceProcess
from services.common.kafka import ensure_topics, make_producer
from services.common.settings import KafkaSettings, Settings
from services.features.topology import home_partition
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


def worker(
    kafka: KafkaSettings, prefix: str, log: Path, env: dict[str, str] | None = None
) -> ServiceProcess:
    return ServiceProcess("services.features", {
        "STREAMML_TOPIC_PREFIX": prefix,
        "STREAMML_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "STREAMML_SPEC": str(SPEC),
        **(env or {}),
    }, log)


def publish(
    kafka: KafkaSettings, prefix: str, events: list[Event], rate: float | None,
    partitioner: str | None = None,
) -> None:
    """Publish keyed by user, with librdkafka's default partitioner unless told otherwise."""
    settings = Settings(kafka=kafka, topic_prefix=prefix)
    options = {} if partitioner is None else {"partitioner": partitioner}
    client = EventClient(make_producer(kafka, **options), settings, entity_key="user")
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


def counter(port: int | None, name: str = "streamml_features_events_processed_total") -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        for family in text_string_to_metric_families(reply.read().decode()):
            for sample in family.samples:
                if sample.name == name:
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


@pytest.mark.parametrize("settings", [
    pytest.param({}, id="defaults"),
    # Commits 3 s apart at 1,000 events/s: 75 events per user between commits, while each
    # state remembers only its last event; the offsets a state has passed must carry recovery.
    pytest.param({"STREAMML_FEATURES__REMEMBER_EVENTS": "1",
                  "STREAMML_FEATURES__COMMIT_INTERVAL_SECONDS": "3"}, id="tiny-memory"),
])
def test_a_sigkilled_worker_restarts_with_the_same_aggregates(
    kafka: KafkaSettings, topics: str, events: list[Event],
    reference: dict[str, list[dict[str, Any]]], tmp_path: Path, settings: dict[str, str],
) -> None:
    first = worker(kafka, topics, tmp_path / "features.log", settings).start()
    publisher = threading.Thread(target=publish, args=(kafka, topics, events, 1000.0))
    publisher.start()
    read_topic(kafka, f"{topics}features", lambda got: len(got) >= EVENTS // 3, timeout=60)
    first.kill()  # mid-stream: a third of the vectors are out, the rest still being published
    publisher.join()
    second = worker(kafka, topics, tmp_path / "features.log", settings).start()
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
        shares = [counter(process.metrics_port) for process in pair]
    finally:
        for process in pair:
            process.stop()
    print(f"two workers: vectors emitted per worker {shares}")
    assert all(share > 0 for share in shares), "both workers must have had partitions"
    assert set(both) == set(reference)
    assert all(copy == reference[event_id][0] for event_id, copies in both.items()
               for copy in copies)


def test_events_outside_their_home_partition_are_rehomed_and_get_the_same_vectors(
    kafka: KafkaSettings, topics: str, events: list[Event],
    reference: dict[str, list[dict[str, Any]]], tmp_path: Path,
) -> None:
    one = worker(kafka, topics, tmp_path / "features.log").start()
    try:
        # Java clients' partitioner: most users land outside the partition their state lives in.
        publish(kafka, topics, events, rate=None, partitioner="murmur2_random")
        rehomed = vectors(kafka, topics)
        moved = counter(one.metrics_port, "streamml_features_rehomed_events_total")
    finally:
        one.stop()
    print(f"re-homed events: {moved:.0f} of {EVENTS}")
    assert moved > 0
    assert set(rehomed) == set(reference)
    assert all(copy == reference[event_id][0] for event_id, copies in rehomed.items()
               for copy in copies)


def test_the_home_partition_is_the_one_librdkafka_chooses(
    kafka: KafkaSettings, topics: str,
) -> None:
    chosen: dict[bytes, int] = {}

    def delivered(error: KafkaError | None, message: Message) -> None:
        assert error is None
        chosen[message.key() or b""] = message.partition() or 0

    producer = make_producer(kafka)
    for n in range(400):
        producer.produce(f"{topics}events", key=f"user-{n}".encode(), value=b"{}",
                         on_delivery=delivered)
    assert producer.flush(30) == 0
    assert len(chosen) == 400
    assert all(home_partition(key, PIPELINE_PARTITIONS) == partition
               for key, partition in chosen.items())
