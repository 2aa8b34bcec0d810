"""The transactional committer of a stateless service (the predictor replicas): outputs and
input offsets commit together, in one transaction, every ``interval`` seconds."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_INVALID,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from services.common.committers import DeliveryReports, Rewound
from services.common.failures import UndeliveredOutput
from services.common.transactions import (
    COMMIT_TIMEOUT_S,
    OFFSETS_TIMEOUT_S,
    TransactionCommitter,
)
from tests.unit.fakes import ManualMonotonic, message

INTERVAL = 2.0
GROUP = object()
"""The consumer's group metadata, passed through as it is."""

Call = tuple[object, ...]


@dataclass
class TransactionLog:
    """The transaction calls of a fake producer and the group calls of a fake consumer."""

    calls: list[Call] = field(default_factory=list)
    offsets_errors: list[KafkaError] = field(default_factory=list)
    committed: dict[tuple[str, int], int] = field(default_factory=dict)

    def names(self) -> list[object]:
        return [call[0] for call in self.calls]


class FakeTransactionalProducer:
    def __init__(self, log: TransactionLog) -> None:
        self.log = log

    def begin_transaction(self) -> None:
        self.log.calls.append(("begin",))

    def send_offsets_to_transaction(self, positions: list[TopicPartition], metadata: object,
                                    timeout: float) -> None:
        self.log.calls.append(("send_offsets", [(tp.topic, tp.partition, tp.offset)
                                                for tp in positions], metadata, timeout))
        if self.log.offsets_errors:
            raise KafkaException(self.log.offsets_errors.pop(0))

    def commit_transaction(self, timeout: float) -> None:
        self.log.calls.append(("commit", timeout))

    def abort_transaction(self, timeout: float) -> None:
        self.log.calls.append(("abort", timeout))


class FakeGroupMember:
    def __init__(self, log: TransactionLog) -> None:
        self.log = log

    def consumer_group_metadata(self) -> object:
        return GROUP

    def committed(self, partitions: list[TopicPartition], timeout: float
                  ) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition,
                               self.log.committed.get((tp.topic, tp.partition), OFFSET_INVALID))
                for tp in partitions]

    def seek(self, partition: TopicPartition) -> None:
        self.log.calls.append(("seek", partition.topic, partition.partition, partition.offset))


@dataclass
class Committer:
    committer: TransactionCommitter
    log: TransactionLog
    monotonic: ManualMonotonic
    deliveries: DeliveryReports
    events: list[str]


def build() -> Committer:
    log, monotonic, deliveries, events = TransactionLog(), ManualMonotonic(), DeliveryReports(), []
    committer = TransactionCommitter(
        FakeTransactionalProducer(log), FakeGroupMember(log), INTERVAL, deliveries,
        on_commit=lambda: events.append("committed"), on_abort=lambda: events.append("aborted"),
        monotonic=monotonic,
    )
    return Committer(committer, log, monotonic, deliveries, events)


def features(partition: int, offset: int) -> Message:
    return message("features", b"{}", b"k", partition, offset)


def test_begin_opens_the_first_transaction() -> None:
    committer = build()
    committer.committer.begin()
    assert committer.log.names() == ["begin"]


def test_nothing_processed_is_never_due() -> None:
    committer = build()
    committer.monotonic.advance(10 * INTERVAL)
    assert not committer.committer.due()


def test_processed_messages_are_due_once_the_interval_passed() -> None:
    committer = build()
    committer.committer.processed(features(0, 0))
    committer.monotonic.advance(INTERVAL - 0.5)
    assert not committer.committer.due()
    committer.monotonic.advance(0.5)
    assert committer.committer.due()


def test_commit_sends_the_next_offsets_then_commits_and_begins_the_next() -> None:
    committer = build()
    for partition, offset in [(1, 4), (0, 0), (1, 7), (0, 2)]:
        committer.committer.processed(features(partition, offset))
    committer.committer.processed(message("labels", b"{}", None, 3, 11))
    committer.committer.commit()
    assert committer.log.calls == [
        ("send_offsets", [("features", 0, 3), ("features", 1, 8), ("labels", 3, 12)], GROUP,
         OFFSETS_TIMEOUT_S),
        ("commit", COMMIT_TIMEOUT_S),
        ("begin",),
    ]
    assert committer.committer.commits == 1
    assert committer.events == ["committed"]


def test_after_a_commit_only_new_messages_are_committed() -> None:
    committer = build()
    committer.committer.processed(features(0, 5))
    committer.committer.commit()
    committer.monotonic.advance(INTERVAL)
    assert not committer.committer.due()
    committer.committer.processed(features(1, 9))
    assert committer.committer.due()
    committer.committer.commit()
    sent = [call[1] for call in committer.log.calls if call[0] == "send_offsets"]
    assert sent == [[("features", 0, 6)], [("features", 1, 10)]]


def test_a_commit_restarts_the_interval() -> None:
    committer = build()
    committer.monotonic.advance(INTERVAL)
    committer.committer.commit()  # nothing to commit, but the interval starts again
    committer.committer.processed(features(0, 0))
    assert not committer.committer.due()
    committer.monotonic.advance(INTERVAL)
    assert committer.committer.due()


def test_a_commit_with_nothing_processed_touches_no_transaction() -> None:
    committer = build()
    committer.committer.commit()
    assert committer.log.calls == []
    assert committer.committer.commits == 0
    assert committer.events == []


def test_a_failed_delivery_raises_instead_of_committing() -> None:
    committer = build()
    committer.committer.processed(features(0, 0))
    lost = message("predictions", b"{}", b"e1", 2, -1)
    committer.deliveries.on_delivery(KafkaError(KafkaError._MSG_TIMED_OUT), lost)
    with pytest.raises(UndeliveredOutput, match="1 produced record"):
        committer.committer.commit()
    assert committer.log.calls == []
    assert committer.committer.commits == 0


def test_records_purged_by_an_abort_are_not_failed_deliveries() -> None:
    committer = build()
    committer.committer.processed(features(0, 0))
    purged = message("predictions", b"{}", b"e1", 2, -1)
    committer.deliveries.on_delivery(KafkaError(KafkaError._PURGE_QUEUE), purged)
    committer.committer.commit()
    assert committer.committer.commits == 1


def test_a_commit_the_group_refuses_aborts_rewinds_and_raises_rewound() -> None:
    committer = build()
    committer.log.committed = {("features", 0): 3}
    committer.log.offsets_errors = [KafkaError(KafkaError.ILLEGAL_GENERATION)]
    committer.committer.processed(features(0, 6))
    committer.committer.processed(features(1, 2))
    with pytest.raises(Rewound) as rewound:
        committer.committer.commit()
    assert rewound.value.positions == {("features", 0): 3, ("features", 1): OFFSET_BEGINNING}
    assert committer.log.names() == ["send_offsets", "abort", "seek", "seek", "begin"]
    assert ("seek", "features", 0, 3) in committer.log.calls
    assert ("seek", "features", 1, OFFSET_BEGINNING) in committer.log.calls
    assert (committer.committer.aborts, committer.committer.commits) == (1, 0)
    assert committer.events == ["aborted"]
    assert not committer.committer.due()


def test_an_error_requiring_an_abort_aborts() -> None:
    committer = build()
    committer.log.offsets_errors = [KafkaError(KafkaError._STATE, txn_requires_abort=True)]
    committer.committer.processed(features(0, 0))
    with pytest.raises(Rewound):
        committer.committer.commit()
    assert committer.committer.aborts == 1


def test_any_other_commit_error_is_raised() -> None:
    committer = build()
    committer.log.offsets_errors = [KafkaError(KafkaError._FATAL)]
    committer.committer.processed(features(0, 0))
    with pytest.raises(KafkaException):
        committer.committer.commit()
    assert "abort" not in committer.log.names()
    assert committer.events == []
