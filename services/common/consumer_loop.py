"""The consume -> process -> produce -> commit loop shared by the confluent-kafka services.

Contract: a message counts as processed only after its handler returned (or after it was
dead-lettered); a :class:`Committer` then makes processed work durable. With the default
:class:`OffsetCommitter`, stored offsets are committed only after the producer flushed everything
the handlers produced, so a crash replays messages (at least once) and never skips one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer

from services.common.dead_letters import DeadLetter, DeadLetterPublisher
from services.common.runtime import StopSignal
from services.common.service_metrics import LoopMetrics

log = logging.getLogger(__name__)


class Handler(Protocol):
    """One service's processing of a message. Raise :class:`DeadLetter` to reject it."""

    def handle(self, message: Message) -> None: ...

    def on_idle(self) -> None:
        """Called when a poll returns nothing: a chance to act on time (timeouts, flushes)."""


class Committer(Protocol):
    """How a loop makes finished work durable. :class:`OffsetCommitter` is at-least-once; the
    model service commits outputs, state and offsets in one transaction instead."""

    def processed(self, message: Message) -> None:
        """The work for ``message`` is done (its outputs are produced)."""

    def due(self) -> bool:
        """Whether it is time to :meth:`commit`."""

    def commit(self) -> None:
        """Make everything processed so far durable."""


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
    """At-least-once: store each finished message's offset; on commit, flush the producer, then
    commit the stored offsets, every ``interval`` seconds.

    While the cluster is unavailable (the producer cannot flush, or the commit fails with one of
    :data:`COMMIT_LATER_ERRORS`), a commit leaves the offsets stored and uncommitted, and the
    next one tries again: the service rides out a broker restart instead of crashing.
    """

    def __init__(self, consumer: Consumer, producer: Producer, interval: float = 1.0) -> None:
        self._consumer = consumer
        self._producer = producer
        self._interval = interval
        self._uncommitted = 0
        self._last_commit = time.monotonic()

    def processed(self, message: Message) -> None:
        self._consumer.store_offsets(message=message)
        self._uncommitted += 1

    def due(self) -> bool:
        return time.monotonic() - self._last_commit >= self._interval

    def commit(self) -> None:
        self._last_commit = time.monotonic()
        if self._uncommitted == 0:
            return
        remaining = self._producer.flush(30)
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


class ConsumerLoop:
    """Runs a :class:`Handler` over a subscribed consumer until stopped or ``max_messages``."""

    def __init__(
        self,
        consumer: Consumer,
        producer: Producer,
        handler: Handler,
        dead_letters: DeadLetterPublisher,
        stop: StopSignal,
        metrics: LoopMetrics,
        base_name_of: Callable[[str], str],
        committer: Committer | None = None,
        poll_timeout: float = 0.1,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._consumer = consumer
        self._producer = producer
        self._handler = handler
        self._dead_letters = dead_letters
        self._stop = stop
        self._metrics = metrics
        self._base_name_of = base_name_of
        self._committer = committer or OffsetCommitter(consumer, producer)
        self._poll_timeout = poll_timeout
        self._monotonic = monotonic
        self.last_turn = monotonic()
        """When the loop last went round (monotonic): a loop stuck in a client call stops it."""

    def subscribe(self, topics: list[str]) -> None:
        """Subscribe, committing finished work before partitions are taken away."""

        def on_revoke(consumer: Consumer, partitions: object) -> None:
            self._committer.commit()

        self._consumer.subscribe(topics, on_revoke=on_revoke)

    def run(self, max_messages: int | None = None) -> int:
        """Process until a stop signal (or ``max_messages``); commit, close. Return the count."""
        processed = 0
        self._metrics.up.set(1)
        try:
            while not self._stop.is_set and (max_messages is None or processed < max_messages):
                self.last_turn = self._monotonic()
                message = self._consumer.poll(self._poll_timeout)
                self._producer.poll(0)
                if message is None:
                    self._handler.on_idle()
                elif self._is_error(message):
                    continue
                else:
                    self._process(message)
                    processed += 1
                if self._committer.due():
                    self._committer.commit()
            self._committer.commit()
        finally:
            self._metrics.up.set(0)
            self._consumer.close()
        return processed

    def _process(self, message: Message) -> None:
        topic = message.topic() or ""
        self._metrics.messages(service=self._metrics_service, topic=self._base_name_of(topic)).inc()
        started = time.perf_counter()
        try:
            self._handler.handle(message)
        except DeadLetter as dead:
            self._dead_letters.publish(
                message.value(), message.key(), topic, message.partition() or 0,
                message.offset() or 0, dead,
            )
            self._metrics.dead_letters(service=self._metrics_service, reason=dead.reason_code).inc()
        self._metrics.processing_seconds.observe(time.perf_counter() - started)
        self._committer.processed(message)

    @property
    def _metrics_service(self) -> str:
        return self._dead_letters.service

    @staticmethod
    def _is_error(message: Message) -> bool:
        error = message.error()
        if error is None:
            return False
        if error.fatal():
            raise KafkaException(error)
        log.warning("consumer error: %s", error)
        return True
