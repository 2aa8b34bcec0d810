"""The transport itself: keyed messages through the real broker, nothing lost or duplicated."""

from __future__ import annotations

import pytest

from services.common.kafka import make_producer
from services.common.settings import KafkaSettings
from tests.integration.conftest import read_topic

pytestmark = pytest.mark.integration

MESSAGES = 10_000
KEYS = 97


def test_ten_thousand_keyed_messages_arrive_once_in_order_per_key(
    kafka: KafkaSettings, topics: str
) -> None:
    topic = f"{topics}events"
    producer = make_producer(kafka)
    for sequence in range(MESSAGES):
        key = f"key-{sequence % KEYS}"
        producer.produce(topic, key=key.encode(), value=f"{key}:{sequence}".encode())
        producer.poll(0)
    assert producer.flush(30) == 0

    messages = read_topic(kafka, topic, lambda got: len(got) >= MESSAGES, timeout=60)

    values = [(message.value() or b"").decode() for message in messages]
    assert len(values) == MESSAGES, f"lost {MESSAGES - len(values)} messages"
    assert len(set(values)) == MESSAGES, "duplicates were delivered"
    last_seen: dict[str, int] = {}
    for value in values:
        key, _, sequence_text = value.rpartition(":")
        sequence = int(sequence_text)
        assert sequence > last_seen.get(key, -1), f"{key} out of order at {sequence}"
        last_seen[key] = sequence
    assert len(last_seen) == KEYS
