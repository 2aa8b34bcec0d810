"""An in-memory broker with the confluent-kafka calls the consumer loop makes, and faults to inject.

:class:`FakeBroker` holds topics (lists of partitions of records) and each group's committed
offsets. :class:`FakeConsumer` and :class:`FakeKafkaProducer` behave as librdkafka's clients do
where the loop depends on it:

* ``store_offsets(message=m)`` stores ``m.offset() + 1``; ``commit()`` commits the stored offsets
  (or ``offsets=``), and raises ``_NO_OFFSET`` when nothing new is stored; ``seek`` moves the
  position; ``close`` revokes the assignment through ``on_revoke``.
* ``produce`` queues a record (``BufferError`` once ``queue_limit`` records are outstanding);
  ``poll`` and ``flush`` serve delivery reports: per :attr:`FakeKafkaProducer.deliveries`, a
  record is acknowledged (appended to its topic), fails (``_MSG_TIMED_OUT``) or stays outstanding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

WireHeaders = list[tuple[str, str | bytes | None]]
DeliveryCallback = Callable[[KafkaError | None, Message], None]
Delivery = Literal["ack", "fail", "hold"]


@dataclass(frozen=True)
class Record:
    """One record in a fake topic partition."""

    value: bytes | None
    key: bytes | None = None
    headers: WireHeaders | None = None


@dataclass
class FakeBroker:
    """Topics and committed offsets, in memory."""

    topics: dict[str, list[list[Record]]] = field(default_factory=dict)
    committed: dict[tuple[str, str, int], int] = field(default_factory=dict)
    """(group, topic, partition) -> the next offset to read."""

    def create_topic(self, name: str, partitions: int = 1) -> None:
        self.topics.setdefault(name, [[] for _ in range(partitions)])

    def append(self, topic: str, record: Record, partition: int = 0) -> int:
        """Append ``record``; return its offset."""
        self.create_topic(topic)
        log = self.topics[topic][partition]
        log.append(record)
        return len(log) - 1

    def records(self, topic: str) -> list[Record]:
        """Every record of ``topic``, partition by partition."""
        return [record for log in self.topics.get(topic, []) for record in log]


class FakeConsumer:
    """A subscribed consumer of one group; assigns itself every partition of its topics."""

    def __init__(self, broker: FakeBroker, group: str) -> None:
        self.broker, self.group = broker, group
        self.positions: dict[tuple[str, int], int] = {}
        self.stored: dict[tuple[str, int], int] = {}
        self.commit_errors: list[int] = []
        """Error codes the next commits raise, one each, before commits succeed again."""
        self.closed = False
        self._on_revoke: Callable[[FakeConsumer, list[TopicPartition]], None] | None = None
        self._turn = 0

    def subscribe(
        self, topics: list[str],
        on_revoke: Callable[[FakeConsumer, list[TopicPartition]], None] | None = None,
    ) -> None:
        self._on_revoke = on_revoke
        for topic in topics:
            self.broker.create_topic(topic)
            for partition in range(len(self.broker.topics[topic])):
                committed = self.broker.committed.get((self.group, topic, partition), 0)
                self.positions[(topic, partition)] = committed

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(topic, partition) for topic, partition in self.positions]

    def poll(self, timeout: float | None = None) -> Message | None:
        """The next record of the assigned partitions, taken in turn; None when all are read."""
        assigned = sorted(self.positions)
        for step in range(len(assigned)):
            topic, partition = assigned[(self._turn + step) % len(assigned)]
            log = self.broker.topics[topic][partition]
            position = self.positions[(topic, partition)]
            if position < len(log):
                self._turn += step + 1
                self.positions[(topic, partition)] = position + 1
                record = log[position]
                return Message(topic=topic, partition=partition, offset=position, key=record.key,
                               value=record.value, headers=record.headers)
        return None

    def consume(self, num_messages: int = 1, timeout: float | None = None) -> list[Message]:
        """Up to ``num_messages`` records, as :meth:`poll` takes them in turn."""
        batch: list[Message] = []
        while len(batch) < num_messages and (message := self.poll(timeout)) is not None:
            batch.append(message)
        return batch

    def store_offsets(self, message: Message | None = None,
                      offsets: list[TopicPartition] | None = None) -> None:
        if message is not None:
            self.stored[(message.topic() or "", message.partition() or 0)] = (
                (message.offset() or 0) + 1)
        for tp in offsets or []:
            self.stored[(tp.topic, tp.partition)] = tp.offset

    def commit(
        self, asynchronous: bool = True, offsets: list[TopicPartition] | None = None,
    ) -> None:
        if self.commit_errors:
            raise KafkaException(KafkaError(self.commit_errors.pop(0)))
        wanted = ({(tp.topic, tp.partition): tp.offset for tp in offsets} if offsets is not None
                  else self.stored)
        fresh = {(topic, partition): offset for (topic, partition), offset in wanted.items()
                 if self.broker.committed.get((self.group, topic, partition)) != offset}
        if not fresh:
            raise KafkaException(KafkaError(KafkaError._NO_OFFSET))
        for (topic, partition), offset in fresh.items():
            self.broker.committed[(self.group, topic, partition)] = offset

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, self.positions[(tp.topic, tp.partition)])
                for tp in partitions]

    def seek(self, partition: TopicPartition) -> None:
        key = (partition.topic, partition.partition)
        if key not in self.positions:
            raise KafkaException(KafkaError(KafkaError._UNKNOWN_PARTITION))
        self.positions[key] = partition.offset

    def close(self) -> None:
        if self._on_revoke is not None and self.positions:
            self._on_revoke(self, self.assignment())
        self.positions.clear()
        self.closed = True


@dataclass
class _Outstanding:
    topic: str
    record: Record
    on_delivery: DeliveryCallback | None


class FakeKafkaProducer:
    """Queues produced records and serves their delivery reports on ``poll``/``flush``."""

    def __init__(self, broker: FakeBroker, on_delivery: DeliveryCallback | None = None) -> None:
        self.broker = broker
        self.on_delivery = on_delivery
        self.deliveries: Delivery = "ack"
        """What the broker answers to outstanding records from now on."""
        self.queue_limit: int | None = None
        self.outstanding: list[_Outstanding] = []

    def produce(
        self, topic: str, value: bytes | None = None, key: bytes | None = None,
        headers: WireHeaders | None = None, on_delivery: DeliveryCallback | None = None,
    ) -> None:
        if self.queue_limit is not None and len(self.outstanding) >= self.queue_limit:
            raise BufferError("Local: Queue full")
        self.outstanding.append(_Outstanding(topic, Record(value, key, headers),
                                             on_delivery or self.on_delivery))

    def poll(self, timeout: float | None = None) -> int:
        return self._serve()

    def flush(self, timeout: float | None = None) -> int:
        self._serve()
        return len(self.outstanding)

    def __len__(self) -> int:
        return len(self.outstanding)

    def _serve(self) -> int:
        if self.deliveries == "hold":
            return 0
        served, self.outstanding = self.outstanding, []
        for item in served:
            error = None
            offset = -1
            if self.deliveries == "ack":
                offset = self.broker.append(item.topic, item.record)
            else:
                error = KafkaError(KafkaError._MSG_TIMED_OUT)
            if item.on_delivery is not None:
                item.on_delivery(error, Message(
                    topic=item.topic, partition=0, offset=offset, key=item.record.key,
                    value=item.record.value, headers=item.record.headers,
                ))
        return len(served)
