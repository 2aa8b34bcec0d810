"""Integration fixtures: the real local broker (started by the project's own code if needed),
unique topic prefixes, and helpers that read topics until a condition holds or a deadline passes.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Message, TopicPartition

from services.cli.local_kafka import BrokerPaths, LocalBroker
from services.common.kafka import (
    BrokerUnavailable,
    ensure_topics,
    make_admin,
    make_consumer,
    wait_for_broker,
)
from services.common.settings import KafkaSettings

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def kafka() -> KafkaSettings:
    """Settings for the local broker; starts it with the project's launcher when none answers."""
    settings = KafkaSettings(
        bootstrap_servers=os.environ.get("STREAMML_TEST_BOOTSTRAP", "127.0.0.1:9092")
    )
    try:
        wait_for_broker(settings, timeout=5)
    except BrokerUnavailable:
        LocalBroker(BrokerPaths(REPO / ".streamml" / "kafka"), REPO / ".cache").start()
        wait_for_broker(settings, timeout=30)
    return settings


@pytest.fixture
def prefix() -> str:
    """A topic prefix no other test uses."""
    return f"t{uuid.uuid4().hex[:10]}-"


@pytest.fixture
def topics(kafka: KafkaSettings, prefix: str) -> str:
    """The whole topic catalogue created under a fresh prefix; returns the prefix."""
    ensure_topics(kafka, prefix)
    return prefix


def read_topic(
    kafka: KafkaSettings,
    topic: str,
    done: Callable[[list[Message]], bool],
    timeout: float = 60.0,
) -> list[Message]:
    """Read ``topic`` from the beginning until ``done(messages)`` or the deadline."""
    consumer = make_consumer(kafka, f"reader-{uuid.uuid4().hex[:8]}")
    consumer.subscribe([topic])
    messages: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not done(messages):
            message = consumer.poll(0.2)
            if message is None or message.error() is not None:
                continue
            messages.append(message)
    finally:
        consumer.close()
    return messages


def topic_size(kafka: KafkaSettings, topic: str, timeout: float = 60.0) -> int:
    """How many committed messages ``topic`` holds, counted by reading it to its end.

    Offsets alone over-count: transaction markers take offsets too, and aborted records are
    skipped by ``read_committed`` readers.
    """
    metadata = make_admin(kafka).list_topics(topic, timeout=10)
    consumer = make_consumer(kafka, f"sizer-{uuid.uuid4().hex[:8]}")
    try:
        ends = {
            partition: consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                      timeout=10)[1]
            for partition in metadata.topics[topic].partitions
        }
        consumer.assign([TopicPartition(topic, partition, 0) for partition in ends])
        count = 0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                count += 1
            positions = consumer.position([TopicPartition(topic, p) for p in ends])
            if all(ends[tp.partition] == 0 or tp.offset >= ends[tp.partition] for tp in positions):
                return count
        raise AssertionError(f"could not read {topic} to its end within {timeout:.0f}s")
    finally:
        consumer.close()


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until true; fail the test with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture
def unique_group() -> Iterator[str]:
    """A consumer group id no other test uses."""
    yield f"group-{uuid.uuid4().hex[:8]}"
