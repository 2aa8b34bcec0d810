"""The consumer loop after a commit that was abandoned (:class:`Rewound`): what it still holds of
the rewound partitions is dropped and read again from the last commit, what it holds of the
others is read again from where it stopped; nothing is skipped."""

from __future__ import annotations

from confluent_kafka import KafkaError, Message, TopicPartition
from prometheus_client import CollectorRegistry

from services.common.committers import DeliveryReports, Rewound
from services.common.consumer_loop import ConsumerLoop
from services.common.dead_letters import DeadLetterPublisher
from services.common.runtime import StopSignal
from services.common.service_metrics import LoopMetrics
from tests.unit.kafka_fakes import FakeBroker, FakeConsumer, FakeKafkaProducer, Record

TOPIC = "in"
PER_PARTITION = 6


class Recorder:
    """Handles by remembering (partition, offset); stops once every record was handled."""

    def __init__(self, stop: StopSignal) -> None:
        self.handled: list[tuple[int, int]] = []
        self._stop = stop

    def handle(self, message: Message) -> None:
        self.handled.append((message.partition() or 0, message.offset() or 0))
        if {(p, PER_PARTITION - 1) for p in (0, 1)} <= set(self.handled):
            self._stop.set()

    def on_idle(self) -> None:
        self._stop.set()


class AbortsOnce:
    """A committer whose first commit, after three messages, is abandoned: partition 0 goes
    back to its last commit (offset 0), as a refused transaction does."""

    def __init__(self, consumer: FakeConsumer) -> None:
        self._consumer = consumer
        self.processed_count = 0
        self.aborted = False
        self.committed: dict[tuple[str, int], int] = {}
        self._next: dict[tuple[str, int], int] = {}

    def processed(self, message: Message) -> None:
        self.processed_count += 1
        self._next[(message.topic() or "", message.partition() or 0)] = (message.offset() or 0) + 1

    def due(self) -> bool:
        return not self.aborted and self.processed_count >= 3

    def commit(self) -> None:
        if not self.aborted:
            self.aborted = True
            self._next.clear()
            self._consumer.seek(TopicPartition(TOPIC, 0, 0))
            self._consumer.seek(TopicPartition(TOPIC, 1, 0))
            raise Rewound({(TOPIC, 0): 0, (TOPIC, 1): 0})
        self.committed.update(self._next)


def run_with_one_abandoned_commit() -> tuple[Recorder, AbortsOnce]:
    broker = FakeBroker()
    broker.create_topic(TOPIC, partitions=2)
    for partition in (0, 1):
        for n in range(PER_PARTITION):
            broker.append(TOPIC, Record(f"{partition}-{n}".encode()), partition=partition)
    consumer, producer, stop = FakeConsumer(broker, "g"), FakeKafkaProducer(broker), StopSignal()
    handler, committer = Recorder(stop), AbortsOnce(consumer)
    loop = ConsumerLoop(
        consumer, producer, handler,  # type: ignore[arg-type]
        DeadLetterPublisher(producer, "dead-letters", "svc"), stop,
        LoopMetrics(CollectorRegistry(), "svc"), base_name_of=str, committer=committer,
        batch_size=100,
    )
    loop.subscribe([TOPIC])
    loop.run()
    return handler, committer


def test_after_an_abandoned_commit_the_rest_of_the_batch_is_dropped_and_read_again() -> None:
    handler, committer = run_with_one_abandoned_commit()
    before, after = handler.handled[:3], handler.handled[3:]
    assert committer.aborted
    # Everything is handled again from the last commit, in order, once: nothing of the batch
    # fetched before the rewind was handled after it.
    for partition in (0, 1):
        assert [offset for p, offset in after if p == partition] == list(range(PER_PARTITION))
    assert len(before) == 3
    assert committer.committed == {(TOPIC, 0): PER_PARTITION, (TOPIC, 1): PER_PARTITION}


def test_records_purged_by_an_aborted_transaction_are_not_failed_deliveries() -> None:
    reports, record = DeliveryReports(), Message(topic="predictions", partition=2)
    reports.on_delivery(KafkaError(KafkaError._PURGE_QUEUE), record)
    reports.on_delivery(KafkaError(KafkaError._PURGE_INFLIGHT), record)
    assert reports.failed == 0
    reports.on_delivery(KafkaError(KafkaError._MSG_TIMED_OUT), record)
    assert reports.failed == 1
    assert "predictions[2] was not delivered" in reports.first_failure
