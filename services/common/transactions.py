"""Kafka transactions that commit a service's outputs with its input offsets.

A service that checkpoints (model, drift) produces everything inside a transaction and ends each
one with :func:`commit_with_offsets`: the input offsets its state covers join the transaction,
which commits, and the next one opens. After a crash the broker aborts the open transaction:
``read_committed`` readers never see its outputs and the group's offsets are those of the last
commit, so a restart from the last checkpoint repeats nothing readers saw.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, Message, TopicPartition

from services.common.blocking_call import call_within
from services.common.committers import DeliveryReports, Rewound
from services.common.failures import UndeliveredOutput
from services.common.resume import partition_key, topic_partition

log = logging.getLogger(__name__)

RETRY_SECONDS = 240.0
"""How long a transaction call that failed with a retriable error (a broker restarting, a
coordinator moving) is tried again. Shorter than :data:`TRANSACTION_TIMEOUT_MS`, so the broker
does not abort the transaction meanwhile."""

OFFSETS_TIMEOUT_S = 30.0
"""The timeout given to ``send_offsets_to_transaction``."""

COMMIT_TIMEOUT_S = 60.0
"""The timeout given to ``commit_transaction``."""

HANG_GRACE_S = 15.0
"""How long past its own timeout a transaction call may block before the service gives up on
its producer (:func:`retried`)."""

TRANSACTION_TIMEOUT_MS = 300_000
"""A transactional producer's ``transaction.timeout.ms``: an open transaction may ride out an
outage of a few minutes (the broker caps it at its ``transaction.max.timeout.ms``, 15 min by
default)."""


class TransactionalProducer(Protocol):
    """The transaction calls of a confluent-kafka producer."""

    def begin_transaction(self) -> None: ...

    def send_offsets_to_transaction(self, positions: list[TopicPartition], metadata: object,
                                    timeout: float) -> None: ...

    def commit_transaction(self, timeout: float) -> None: ...


class AbortableProducer(TransactionalProducer, Protocol):
    """A transactional producer that can abort."""

    def abort_transaction(self, timeout: float) -> None: ...


class GroupMember(Protocol):
    """The consumer whose group the offsets are committed for."""

    def consumer_group_metadata(self) -> object: ...


class SeekableMember(GroupMember, Protocol):
    """A group member that can read its committed offsets and seek."""

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        ...

    def seek(self, partition: TopicPartition) -> None: ...


REBALANCED = frozenset({KafkaError.ILLEGAL_GENERATION, KafkaError.UNKNOWN_MEMBER_ID,
                        KafkaError.REBALANCE_IN_PROGRESS, KafkaError.FENCED_INSTANCE_ID})
"""Offset commits the group refuses because its membership moved on."""


def commit_with_offsets(producer: TransactionalProducer, consumer: GroupMember,
                        offsets: Mapping[str, int]) -> None:
    """Add ``offsets`` (``"topic:partition"`` -> next offset to read) to the open transaction,
    commit it and open the next one. Raises what :func:`retried` raises; the transaction is then
    left uncommitted and the service must restart from its last checkpoint."""
    if offsets:
        positions = [topic_partition(name, offset) for name, offset in sorted(offsets.items())]
        metadata = consumer.consumer_group_metadata()
        retried(lambda: producer.send_offsets_to_transaction(positions, metadata,
                                                             OFFSETS_TIMEOUT_S),
                "adding the input offsets to the transaction", OFFSETS_TIMEOUT_S)
    retried(lambda: producer.commit_transaction(COMMIT_TIMEOUT_S), "committing the transaction",
            COMMIT_TIMEOUT_S)
    producer.begin_transaction()


def retried(call: Callable[[], None], what: str, timeout: float) -> None:
    """Run a transaction call given ``timeout`` seconds, again while it fails with a retriable
    error (librdkafka's contract for ``send_offsets_to_transaction`` and
    ``commit_transaction``); anything else, or still failing after :data:`RETRY_SECONDS`, is
    raised: the service then restarts from its last checkpoint.

    A call still blocked :data:`HANG_GRACE_S` after its own timeout raises
    :class:`~services.common.blocking_call.CallHung` (librdkafka issues #5456, #5511): the
    transaction is never committed, so the restart loses and repeats nothing.
    """
    deadline = time.monotonic() + RETRY_SECONDS
    while True:
        try:
            call_within(call, timeout + HANG_GRACE_S, what)
            return
        except KafkaException as exception:
            error = exception.args[0]
            if not error.retriable() or time.monotonic() > deadline:
                raise
            log.warning("%s failed, retrying: %s", what, error.str())


class TransactionCommitter:
    """Exactly-once consume-process-produce for a service without state of its own (a
    :class:`~services.common.consumer_loop.Committer`): every ``interval`` seconds the outputs
    produced since the last commit are committed with the offsets after the messages processed,
    in one transaction (after :meth:`begin`). The loop commits before partitions are revoked, so
    their next owner starts where this one's committed outputs end; a process that dies leaves
    its transaction open until the broker aborts it, and its partitions' next owner waits for
    that (``read_committed`` offsets are read only once stable) before reading them again.

    A commit the group refuses (a rebalance moved on: :data:`REBALANCED`, or any error that
    requires an abort) aborts the transaction, seeks the partitions it covered back to their
    last committed offsets, calls ``on_abort`` (the handler forgets what it did since) and
    raises :class:`~services.common.committers.Rewound`: the loop then drops what it holds of
    them, and the work is done again, once. A record whose delivery failed raises
    :class:`UndeliveredOutput` instead of a commit. ``on_commit`` is called after each commit.
    """

    def __init__(self, producer: AbortableProducer, consumer: SeekableMember, interval: float,
                 deliveries: DeliveryReports | None = None,
                 on_commit: Callable[[], None] = lambda: None,
                 on_abort: Callable[[], None] = lambda: None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._producer, self._consumer = producer, consumer
        self._interval = interval
        self._deliveries = deliveries
        self._on_commit, self._on_abort = on_commit, on_abort
        self._monotonic = monotonic
        self._next: dict[tuple[str, int], int] = {}
        self._last = monotonic()
        self.commits = 0
        self.aborts = 0

    def begin(self) -> None:
        """Open the first transaction (after ``init_transactions``)."""
        self._producer.begin_transaction()

    def processed(self, message: Message) -> None:
        self._next[(message.topic() or "", message.partition() or 0)] = (message.offset() or 0) + 1

    def due(self) -> bool:
        return bool(self._next) and self._monotonic() - self._last >= self._interval

    def commit(self) -> None:
        self._last = self._monotonic()
        if not self._next:
            return
        if self._deliveries is not None and self._deliveries.failed:
            raise UndeliveredOutput(f"{self._deliveries.failed} produced record(s) lost, "
                                    f"{self._deliveries.first_failure}; not committed")
        try:
            commit_with_offsets(self._producer, self._consumer, {
                partition_key(topic, partition): offset
                for (topic, partition), offset in self._next.items()})
        except KafkaException as exception:
            error = exception.args[0]
            if not (error.txn_requires_abort() or error.code() in REBALANCED):
                raise
            self._abort(error.str())
        self._next.clear()
        self.commits += 1
        self._on_commit()

    def _abort(self, why: str) -> None:
        """Abort the open transaction, seek back to the committed offsets, raise Rewound."""
        log.warning("transaction aborted (%s): its %d partition(s) are read again", why,
                    len(self._next))
        retried(lambda: self._producer.abort_transaction(COMMIT_TIMEOUT_S),
                "aborting the transaction", COMMIT_TIMEOUT_S)
        partitions = [TopicPartition(topic, partition) for topic, partition in self._next]
        positions: dict[tuple[str, int], int] = {}
        for committed in self._consumer.committed(partitions, timeout=OFFSETS_TIMEOUT_S):
            offset = committed.offset if committed.offset >= 0 else OFFSET_BEGINNING
            try:
                self._consumer.seek(TopicPartition(committed.topic, committed.partition, offset))
            except KafkaException as error:  # no longer assigned: its next owner reads it
                log.info("not rewinding %s[%d]: %s", committed.topic, committed.partition,
                         error)
            positions[(committed.topic, committed.partition)] = offset
        self._next.clear()
        self.aborts += 1
        self._on_abort()
        self._producer.begin_transaction()
        raise Rewound(positions)
