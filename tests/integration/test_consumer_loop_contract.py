"""The consumer loop's contract (``tests/contracts/consumer_loop.py``) against the real broker.

Checks that need faults the broker cannot be made to show on demand are skipped here; they run
against the in-memory clients (``tests/unit/test_consumer_loop_contract.py``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.cimpl import NewTopic

from schemas.dead_letters import DeadLetterHeaders
from services.common.committers import DeliveryReports
from services.common.kafka import create_missing_topics, make_consumer, make_producer
from services.common.settings import KafkaSettings
from tests.contracts.consumer_loop import Clients, ConsumerLoopContract, LoopBackend
from tests.integration.conftest import read_topic

pytestmark = pytest.mark.integration


class BrokerBackend(LoopBackend):
    """Topics under a prefix of their own on the local broker."""

    def __init__(self, kafka: KafkaSettings, prefix: str) -> None:
        self.kafka, self.prefix = kafka, prefix
        self._numbers = itertools.count()

    def topic(self) -> str:
        name = f"{self.prefix}loop-{next(self._numbers)}"
        create_missing_topics(self.kafka, [
            NewTopic(topic, num_partitions=1, replication_factor=1)
            for topic in (name, f"{name}.out", f"{name}.dead-letters")
        ])
        return name

    def publish(self, topic: str, values: list[bytes]) -> None:
        producer = make_producer(self.kafka)
        for value in values:
            producer.produce(topic, value=value)
        assert producer.flush(30) == 0

    def clients(self, group: str) -> Clients:
        deliveries = DeliveryReports()
        return Clients(make_consumer(self.kafka, group),
                       make_producer(self.kafka, on_delivery=deliveries.on_delivery), deliveries)

    def committed(self, group: str, topic: str) -> int | None:
        consumer = make_consumer(self.kafka, group)
        try:
            [partition] = consumer.committed([TopicPartition(topic, 0)], timeout=10)
        finally:
            consumer.close()
        return None if partition.offset < 0 else int(partition.offset)

    def read(self, topic: str, count: int) -> list[tuple[bytes | None, DeadLetterHeaders | None]]:
        messages = read_topic(self.kafka, topic, lambda got: len(got) >= count, timeout=30)
        return [
            (message.value(),
             DeadLetterHeaders.from_kafka_headers(message.headers() or [])
             if message.headers() else None)
            for message in messages[:count]
        ]


class TestConsumerLoopOnTheBroker(ConsumerLoopContract):
    @pytest.fixture
    def backend(self, kafka: KafkaSettings, prefix: str) -> Iterator[LoopBackend]:
        yield BrokerBackend(kafka, prefix)
