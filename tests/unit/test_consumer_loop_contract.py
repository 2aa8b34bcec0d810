"""The consumer loop's contract (``tests/contracts/consumer_loop.py``) against in-memory clients."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from schemas.dead_letters import DeadLetterHeaders
from services.common.committers import DeliveryReports
from tests.contracts.consumer_loop import Clients, ConsumerLoopContract, LoopBackend
from tests.unit.kafka_fakes import FakeBroker, FakeConsumer, FakeKafkaProducer


@dataclass
class _FakeFaults:
    consumer: FakeConsumer
    producer: FakeKafkaProducer

    def hold_deliveries(self) -> None:
        self.producer.deliveries = "hold"

    def fail_deliveries(self) -> None:
        self.producer.deliveries = "fail"

    def fail_next_commits(self, *codes: int) -> None:
        self.consumer.commit_errors.extend(codes)

    def fill_queue(self) -> None:
        self.producer.queue_limit = 0

    def free_queue(self) -> None:
        self.producer.queue_limit = None


class InMemoryBackend(LoopBackend):
    """A :class:`FakeBroker` and its clients."""

    def __init__(self) -> None:
        self.broker = FakeBroker()
        self._topics = 0

    def topic(self) -> str:
        self._topics += 1
        name = f"input-{self._topics}"
        self.broker.create_topic(name)
        return name

    def publish(self, topic: str, values: list[bytes]) -> None:
        producer = FakeKafkaProducer(self.broker)
        for value in values:
            producer.produce(topic, value=value)
        assert producer.flush() == 0

    def clients(self, group: str) -> Clients:
        deliveries = DeliveryReports()
        return Clients(FakeConsumer(self.broker, group),
                       FakeKafkaProducer(self.broker, deliveries.on_delivery), deliveries)

    def committed(self, group: str, topic: str) -> int | None:
        return self.broker.committed.get((group, topic, 0))

    def read(self, topic: str, count: int) -> list[tuple[bytes | None, DeadLetterHeaders | None]]:
        return [
            (record.value, None if record.headers is None else DeadLetterHeaders.from_kafka_headers(
                [(name, value.encode() if isinstance(value, str) else value)
                 for name, value in record.headers]))
            for record in self.broker.records(topic)[:count]
        ]

    def faults(self, clients: Clients) -> _FakeFaults:
        return _FakeFaults(clients.consumer, clients.producer)


class TestConsumerLoopInMemory(ConsumerLoopContract):
    @pytest.fixture
    def backend(self) -> Iterator[LoopBackend]:
        yield InMemoryBackend()
