"""How a consumer loop makes finished work durable: the at-least-once :class:`OffsetCommitter`,
the producer's :class:`DeliveryReports` it checks, and :class:`Rewound`, which a transactional
committer raises after aborting (:class:`services.common.transactions.TransactionCommitter`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from services.common.failures import UndeliveredOutput

log = logging.getLogger(__name__)


class Rewound(Exception):
    """A commit was abandoned and the consumer sought back to the last committed offsets of
    ``positions`` (``(topic, partition)`` -> offset): the work since, and every message of those
    partitions already fetched, is to be done again; the loop drops what it holds of them."""

    def __init__(self, positions: Mapping[tuple[str, int], int]) -> None:
        super().__init__(f"rewound {len(positions)} partition(s) to their last commit")
        self.positions = dict(positions)


PURGED = frozenset({KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT})
"""Delivery errors of the records an aborted transaction discards."""


class DeliveryReports:
    """Remembers the producer's failed deliveries; give :meth:`on_delivery` to the producer as
    its ``on_delivery`` setting (a record produced with its own callback is not seen here)."""

    def __init__(self) -> None:
        self.failed = 0
        self.first_failure = ""

    def on_delivery(self, error: KafkaError | None, message: Message) -> None:
        """librdkafka's delivery report for one record (served by ``poll`` and ``flush``). A
        record purged by an aborted transaction was discarded on purpose: not a failure."""
        if error is None or error.code() in PURGED:
            return
        self.failed += 1
        if not self.first_failure:
            self.first_failure = (f"a record for {message.topic()}[{message.partition()}] was "
                                  f"not delivered: {error.str()}")


COMMIT_LATER_ERRORS = frozenset({
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.NOT_COORDINATOR, KafkaError.REQUEST_TIMED_OUT, KafkaError._WAIT_COORD,
    KafkaError._TRANSPORT, KafkaError._TIMED_OUT,
    KafkaError._ASSIGNMENT_LOST, KafkaError.UNKNOWN_MEMBER_ID, KafkaError.ILLEGAL_GENERATION,
    KafkaError.REBALANCE_IN_PROGRESS,
})
"""Commit failures that leave the offsets uncommitted without harm: while the group coordinator
is unreachable or loading (a broker restart) the next commit tries again; partitions the group
took away are delivered again to their next owner (at least once)."""


class OffsetCommitter:
    """At-least-once: remember the offset after each finished message; on commit, store them
    (one call), flush the producer, then commit the stored offsets, every ``interval`` seconds.
    Revoking partitions commits first (:meth:`ConsumerLoop.subscribe`), so nothing remembered
    belongs to a partition the consumer no longer owns.

    While the cluster is unavailable (the producer cannot flush, or the commit fails with one of
    :data:`COMMIT_LATER_ERRORS`), a commit leaves the offsets stored and uncommitted, and the
    next one tries again: the service rides out a broker restart instead of crashing. A record
    whose delivery failed (``deliveries``) raises :class:`UndeliveredOutput` instead of a commit.
    """

    def __init__(
        self, consumer: Consumer, producer: Producer, interval: float = 1.0,
        deliveries: DeliveryReports | None = None,
        monotonic: Callable[[], float] = time.monotonic, flush_timeout: float = 30.0,
    ) -> None:
        self._consumer = consumer
        self._producer = producer
        self._interval = interval
        self._deliveries = deliveries
        self._monotonic = monotonic
        self._flush_timeout = flush_timeout
        self._uncommitted = 0
        self._next: dict[tuple[str, int], int] = {}
        self._last_commit = monotonic()

    def processed(self, message: Message) -> None:
        self._next[(message.topic() or "", message.partition() or 0)] = (message.offset() or 0) + 1
        self._uncommitted += 1

    def _store(self) -> None:
        """Store the offsets after the messages processed since the last store (one call)."""
        if self._next:
            self._consumer.store_offsets(offsets=[
                TopicPartition(topic, partition, offset)
                for (topic, partition), offset in self._next.items()])
            self._next.clear()

    def due(self) -> bool:
        return self._monotonic() - self._last_commit >= self._interval

    def commit(self) -> None:
        self._last_commit = self._monotonic()
        if self._uncommitted == 0:
            return
        self._store()
        remaining = self._producer.flush(self._flush_timeout)
        if self._deliveries is not None and self._deliveries.failed:
            raise UndeliveredOutput(f"{self._deliveries.failed} produced record(s) lost, "
                                    f"{self._deliveries.first_failure}; offsets not committed")
        if remaining:
            log.warning("%d produced messages not acknowledged yet; not committing offsets",
                        remaining)
            return
        try:
            self._consumer.commit(asynchronous=False)
        except KafkaException as error:
            code = error.args[0].code()
            if code in COMMIT_LATER_ERRORS:
                log.warning("offsets not committed, will try again: %s", error.args[0].str())
                return
            if code != KafkaError._NO_OFFSET:
                raise
        self._uncommitted = 0
